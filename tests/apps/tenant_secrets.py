"""The two tenants of tests/apps/oauth_tenants.py and their signing secrets (importable without a key)."""

from __future__ import annotations

TENANT_A, TENANT_B = "acc-A", "acc-B"
WEBHOOK_SECRETS = {TENANT_A: "tenant-a-webhook-secret-31f0", TENANT_B: "tenant-b-webhook-secret-8e2c"}
ACTION_SECRETS = {TENANT_A: "tenant-a-action-secret-4b7d", TENANT_B: "tenant-b-action-secret-c95a"}
