"""Outward clients: the subcloud agent client (and, later, the peer-site client)."""
