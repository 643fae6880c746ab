"""``python -m scimward``: the same command line as ``scimward``."""

from scimward.cli.entry import main

main()
