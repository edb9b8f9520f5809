"""Cluster infrastructure: the processes sharing a site's database, their shard leases, the
leader of each singleton loop and the wake-ups carried between them (design principle 5)."""
