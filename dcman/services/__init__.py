"""Use cases: each public coroutine is one operation, run in one database transaction."""
