"""What the ingress and the workers share, by concern.

- `shared.core`: event and UI models, middleware, signatures, the handler registry, the API client.
- `shared.jobs`: the queue contract and job state (completion marker, attempts, ledger, dead letters).
- `shared.oauth`: Adobe IMS sign-in configuration, the encrypted token store, the token manager.
- `shared.actions`: multi-step action state and the hand-off of action work to the workers.
- top level: settings, logging, every exception (`errors`), Redis clients and key names.

Nothing here imports `ingress`, `workers` or `frameio_kit`.
"""
