"""Example integrations: run one with `frameio-kit dev examples.review_bot:app`."""
