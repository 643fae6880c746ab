"""The console: server-rendered pages for the people who govern identities (an edge, like api and cli)."""
