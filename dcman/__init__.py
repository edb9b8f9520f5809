"""dcman: a geo-redundant Distributed Cloud manager."""

__version__ = "0.1.0"
