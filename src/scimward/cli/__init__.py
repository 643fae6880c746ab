"""The command line: ``scimward serve``, ``scimward token ...``, ``scimward db upgrade``."""
