"""Benchmarks only (``bench/run.py --audit-ab``): on this PYTHONPATH, the process starts with its audit
append taken out (``bench/no_audit.py``). Never on an installed scimward's path."""

import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parent.parent))

from no_audit import MARK, without_audit

without_audit()
print(MARK, file=sys.stderr, flush=True)
