"""Governance (DESIGN.md): group owners and purpose, access reviews, findings, reports.

Beside ``scimward.sync``: it may import ``policy``, ``store`` and ``scim``, and every identity it
changes goes through the gate (``policy.identity_store``) with its own source.
"""
