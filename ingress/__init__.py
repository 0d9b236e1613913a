"""The web side: a thin Starlette app that verifies, enqueues webhooks and answers actions."""
