"""HTTP: routers per resource translate requests to use cases and domain errors to status codes."""
