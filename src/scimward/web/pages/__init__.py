"""One module per console page, each with its ``routes`` (listed in ``web.nav.PAGES``)."""
