"""`InstallOptions`: what `App(install=True, ...)` was given, checked once at construction."""

from __future__ import annotations

from dataclasses import dataclass

from shared.install.models import InstallField


@dataclass(frozen=True)
class InstallOptions:
    """Branding and policy of the install pages. `allowed_accounts` None: any account may install."""

    fields: tuple[InstallField, ...]
    allowed_accounts: frozenset[str] | None
    name: str
    description: str
    logo_url: str | None
    session_ttl: int
    base_url: str | None

    def account_allowed(self, account_id: str) -> bool:
        return self.allowed_accounts is None or account_id in self.allowed_accounts
