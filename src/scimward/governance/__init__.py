"""Governance: owners, reviews, non-human identity lifecycle, findings, risk, reports (DESIGN.md)."""
