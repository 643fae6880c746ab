"""``python -m scimward``: the same command line as ``scimward``."""

from scimward.cli.main import main

main()
