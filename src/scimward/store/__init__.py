"""Storage: SQL tables, migrations, filters compiled to SQL, and repositories."""
