"""HR sources (issue 17): import an export through the gate, correlate it, check HR / IdP / targets.

The edges use this facade; the modules behind it may move freely.
"""

from __future__ import annotations

from scimward.governance.sources.importer import Importer, ImportReport, owned_attributes
from scimward.governance.sources.readers import ExportError, load_format
from scimward.governance.sources.records import BadRow, HrRecord, RowFormat
from scimward.governance.sources.runner import CheckReport, SourceCheck, run_source_schedule

__all__ = [
    "BadRow",
    "CheckReport",
    "ExportError",
    "HrRecord",
    "ImportReport",
    "Importer",
    "RowFormat",
    "SourceCheck",
    "load_format",
    "owned_attributes",
    "run_source_schedule",
]
