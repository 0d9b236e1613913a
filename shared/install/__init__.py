"""Self-service install: records, Frame.io calls, secret resolution, install config (docs/install.md)."""
