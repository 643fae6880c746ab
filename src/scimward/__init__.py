"""scimward: a governed SCIM 2.0 identity-lifecycle hub."""

__version__ = "0.1.0"
