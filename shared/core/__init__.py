"""The frameio-kit data model and API: events, Form/Message, middleware, signatures, the registry."""
