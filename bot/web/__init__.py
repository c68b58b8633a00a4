"""The operators' web dashboard: server-rendered pages over the store, mounted on the health server."""
