"""The self-service install pages at /install (docs/install.md)."""
