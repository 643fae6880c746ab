"""Why the database cannot be used, sorted by what the operator does about it.

Importing this module costs nothing (no SQLAlchemy), so the command line's error chokepoint can
know these classes without loading a driver::

    DatabaseUrlError        the URL itself is wrong: fix the option (a ConfigurationError)
    DatabaseError           the database named by a good URL cannot be used now
    ├── DatabaseUnavailable unreachable, or the credentials are refused
    └── SchemaMismatch      its schema is not the one this scimward expects: run ``scimward db upgrade``

Messages never contain a password: URLs in them are rendered with the password hidden.
"""

from __future__ import annotations

from scimward.errors import ConfigurationError, ScimwardError


class DatabaseUrlError(ConfigurationError):
    """A database URL scimward cannot use."""


class DatabaseError(ScimwardError):
    """The database cannot be used."""


class DatabaseUnavailable(DatabaseError):
    """The database server cannot be reached, or refuses the connection."""


class SchemaMismatch(DatabaseError):
    """The database's schema is behind (or ahead of) the migrations this scimward ships."""
