"""The SCIM domain: schemas, filters, PATCH semantics and errors. Pure: no I/O."""
