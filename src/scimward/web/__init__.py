"""The web console: an edge beside the API and the command line (DESIGN.md)."""
