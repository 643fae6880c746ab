"""The limits every request is held to, and the one check of text that every input passes.

A limit here exists so that a request's cost stays proportional to its size and below a bound, and
so that SQLite and PostgreSQL accept and refuse the same input: PostgreSQL refuses a NUL character
in text and JSONB and enforces ``VARCHAR(n)``, SQLite does neither, and neither can store a lone
UTF-16 surrogate. Checking here, in the pure layer, before any SQL is built, makes each of those a
400 with a clear detail on both dialects instead of a driver error on one of them.

docs/security.md lists these limits with their defaults; the configurable one (PATCH operations)
lives in the API settings. RFC 7643 5 gives ServiceProviderConfig's "patch" and "filter" no such
attributes, so they are advertised in an extension of it (``LIMITS_SCHEMA``, ``advertised``), which
``SCIMWARD_LIMITS_IN_CONFIG`` turns on: validating clients (scim2-models) refuse members they do not
know, so it is off by default.
"""

from __future__ import annotations

import re
from typing import Any

from scimward.scim.errors import InvalidValue, ScimError, TooMany

__all__ = [
    "DEFAULT_PATCH_MAX_OPERATIONS",
    "LIMITS_SCHEMA",
    "MAX_FILTER_EXPRESSIONS",
    "MAX_FILTER_LENGTH",
    "MAX_FILTER_NESTING",
    "MAX_INDEX",
    "MAX_NUMBER_LENGTH",
    "MAX_PATCH_VALUE_VISITS",
    "MAX_TEXT_LENGTH",
    "MAX_VALUES",
    "advertised",
    "check_integer",
    "check_operation_count",
    "check_strings",
    "check_text",
    "text_problem",
]

#: Operations in one PATCH request, by default (``SCIMWARD_PATCH_MAX_OPERATIONS``).
DEFAULT_PATCH_MAX_OPERATIONS = 1000
#: Characters in one filter or PATCH path; SQLite refuses LIKE patterns over 50,000 bytes.
MAX_FILTER_LENGTH = 10_000
#: Attribute expressions (comparisons, ``pr``) combined in one filter with ``and``/``or``.
MAX_FILTER_EXPRESSIONS = 200
#: Parentheses (and value-filter brackets) nested in one filter: deeper is a 400, not a RecursionError.
MAX_FILTER_NESTING = 50
#: Characters of a number in a filter: more digits than a 64-bit integer or a double can hold.
MAX_NUMBER_LENGTH = 64
#: Values of one multi-valued attribute kept in the document (``emails``, ``roles``; not ``members``,
#: which are rows): a PATCH filter over them is evaluated element by element.
MAX_VALUES = 1000
#: Values one PATCH may walk in all: an operation that is not an append (a filtered, sub-attribute
#: or whole-attribute ``replace``/``remove``, a filtered ``add``) walks every value of its attribute, so
#: 1,000 such operations on 1,000 e-mails cost a million steps (5 s of CPU, measured); beyond, 400 tooMany.
MAX_PATCH_VALUE_VISITS = 50_000
#: The largest ``startIndex`` or ``count`` a list request may name (a 32-bit signed integer).
MAX_INDEX = 2**31 - 1
#: Characters of ``userName``, ``externalId``, ``displayName``, an Agent's ``name``: their column size.
MAX_TEXT_LENGTH = 256

#: The extension of ServiceProviderConfig that advertises these limits (``/Schemas`` describes it).
LIMITS_SCHEMA = "urn:scimward:params:scim:schemas:extension:limits:2.0:ServiceProviderConfig"


def advertised(patch_max_operations: int) -> dict[str, int]:
    """The limits as ``LIMITS_SCHEMA`` names them, for ServiceProviderConfig."""
    return {
        "patchMaxOperations": patch_max_operations,
        "patchMaxValueVisits": MAX_PATCH_VALUE_VISITS,
        "filterMaxLength": MAX_FILTER_LENGTH,
        "filterMaxExpressions": MAX_FILTER_EXPRESSIONS,
        "filterMaxNesting": MAX_FILTER_NESTING,
        "maxValues": MAX_VALUES,
        "maxIndex": MAX_INDEX,
        "maxTextLength": MAX_TEXT_LENGTH,
    }


_INT64 = 2**63
# A NUL, or a surrogate code point on its own (valid UTF-8 can carry neither a lone surrogate nor a pair).
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")


def text_problem(text: str) -> str | None:
    """What makes ``text`` unstorable (a NUL character, a lone surrogate), or None when it is fine."""
    match = _BAD_TEXT.search(text)
    if match is None:
        return None
    return "a NUL character" if match[0] == "\x00" else f"a lone surrogate (U+{ord(match[0]):04X})"


def check_text(text: str, where: str, error: type[ScimError] = InvalidValue) -> None:
    """Raise ``error`` when ``text`` holds a character no database here can store."""
    problem = text_problem(text)
    if problem is not None:
        raise error(f"{where} contains {problem}, which cannot be stored")


def check_integer(value: int, where: str, error: type[ScimError] = InvalidValue) -> int:
    """``value`` when it fits a 64-bit signed integer (what both dialects store); else ``error``."""
    if not -_INT64 <= value < _INT64:
        raise error(f"{where} is out of range: integers must fit in 64 bits")
    return value


def check_strings(value: Any, where: str = "the request") -> None:
    """Check every string (object keys too) in a decoded JSON ``value``, iteratively: nesting costs no
    recursion, and the walk is linear in the size of the value."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            check_text(item, f"a string in {where}")
        elif isinstance(item, dict):
            for key, inner in item.items():
                if isinstance(key, str):
                    check_text(key, f"an attribute name in {where}")
                pending.append(inner)
        elif isinstance(item, list):
            pending.extend(item)


def check_operation_count(count: int, limit: int) -> None:
    """RFC 7644 3.12 ``tooMany``: more operations than one request may carry."""
    if count > limit:
        raise TooMany(f"the request has {count} operations; at most {limit} are allowed in one request")
