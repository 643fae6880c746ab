"""Governance (DESIGN.md layers): owners, reviews, non-human identities, HR sources, findings, risk."""
