"""Container test support: stand-in base images, the compose override, the stack driver."""
