"""Code both sides use: event and UI models, signatures, settings, the handler registry."""
