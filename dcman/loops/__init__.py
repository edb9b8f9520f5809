"""Background reconcilers, one module per kind: each reads state from the database, acts, and
writes state back, on the one runner of dcman.loops.runner (wake-ups, ticks, back-off)."""
