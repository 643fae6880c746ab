"""The root of scimward's own errors, and the tree under it.

Every failure the project expects is a ``ScimwardError``; each is defined by the layer that knows
it, and mapped at the edges: to a SCIM Error body at the SCIM edge and to the admin API's JSON error
at the admin edge (one table, ``api/errors.py``), and to one line and an exit code at the command
line's chokepoint (``cli/exits.py``). Anything else that reaches an edge is a bug: logged with its
traceback, answered as an internal error. The tree::

    ScimwardError
    ├── ScimError                    scim/errors.py: a request the protocol refuses, with its status
    │   ├── InvalidValue             400 invalid input (and InvalidFilter, InvalidPath, InvalidSyntax,
    │   │                            MutabilityError, NoTarget, TooMany, InvalidVersion)
    │   ├── InvalidCursor            400 a cursor that is not ours
    │   ├── ExpiredCursor            400 a cursor past its time (store/identity/cursor.py)
    │   ├── Unauthorized, Forbidden  401, 403
    │   ├── NotFound                 404 (and UnknownFinding, 404: store/governance/findings.py)
    │   ├── UniquenessError          409 a conflict with what is stored
    │   ├── PreconditionFailed       412 If-Match names another version
    │   ├── PolicyDenied             400 the gate denied the change (store/governance/changes.py)
    │   ├── ReconcileBusy            409 a target's reconcile is running (store/governance/findings.py)
    │   └── ServiceUnavailable       503 busy: the database or a dependency, with Retry-After
    ├── ConfigurationError           a setting, URL, key or document the operator must correct
    │   ├── SettingsError            settings.py
    │   ├── DatabaseUrlError         store/errors.py
    │   ├── SecretKeyError           sync/secrets.py: missing, malformed, exposed or the wrong key
    │   ├── PolicyError              policy/document.py: a policy document that does not hold
    │   ├── OwnershipError           policy/ownership.py: its attributes: or sources: section
    │   ├── ExpressionError          policy/cel.py: a rule's CEL expression
    │   └── ExportError              governance/sources/readers.py: an HR export or mapping file
    ├── DatabaseError                store/errors.py: the database cannot be used
    │   ├── DatabaseUnavailable      unreachable, credentials refused
    │   ├── SchemaMismatch           behind (or ahead of) this scimward's migrations
    │   └── AuditError               store/governance/audit.py: the audit trail has no heads (not migrated)
    ├── PolicyLayerError             policy/errors.py: approvals and breakers
    │   ├── ApprovalError            four eyes, not pending (ReviewError: a review decision refused)
    │   │   └── UnknownSubject       no change, target or identity by that name
    │   └── ConfigChangeHeld         policy/plans.py: accepted, waiting for a second person
    ├── BadRow                       governance/sources/records.py: one import row that cannot be used
    ├── UnknownKind                  governance/catalogue.py: no finding kind or framework id by that name
    ├── TargetError                  sync/errors.py: a request to a target failed; the subclass says
    │                                whether to retry, skip or halt
    └── CommandError                 cli/exits.py: what only the command line knows

This module imports nothing: every layer, the pure ``scim`` layer and the settings model included,
may derive its errors from it.
"""

from __future__ import annotations


class ScimwardError(Exception):
    """A failure scimward expects and can name; the message says what is wrong (never a credential)."""


class ConfigurationError(ScimwardError, ValueError):
    """A value the operator gave (a setting, a URL, a key, a policy document) that cannot be used."""
