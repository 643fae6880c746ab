"""Governance: owners, reviews, non-human identity lifecycle, sources, findings, risk and reports.

A layer beside ``sync``: it may import ``policy``, ``store`` and ``scim``, and every identity change
it makes passes the gate (``scimward.policy.identity_store``).
"""
