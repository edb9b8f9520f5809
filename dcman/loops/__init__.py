"""Background reconcilers: each reads state from the database, acts, and writes state back."""
