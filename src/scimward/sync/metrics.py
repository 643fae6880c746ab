"""Prometheus metrics of propagation (served at /metrics by the API)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

PUSHES = Counter("scimward_pushes_total", "Pushes acknowledged by a target, by action.", ["target", "action"])
FAILURES = Counter("scimward_push_failures_total", "Failed pushes, by kind.", ["target", "kind"])
LATENCY = Histogram(
    "scimward_propagation_seconds",
    "From a change to a target acknowledging it.",
    ["target"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
PUSH_SECONDS = Histogram("scimward_push_seconds", "Time spent on one outbox row.", ["target"])
