"""HTTP edges: the SCIM service provider at /scim/v2 and health endpoints."""
