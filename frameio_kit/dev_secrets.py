"""Dev-mode signing secrets: random for each `frameio-kit dev` session, kept in a 0600 file that
`frameio-kit send` reads; and the well-known values `frameio-kit ingress` refuses to run with."""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import stat
from dataclasses import asdict, dataclass
from pathlib import Path

from shared.settings import Settings

PLACEHOLDER = "change-me"
"""The value .env.example ships for WEBHOOK_SECRET and CUSTOM_ACTION_SECRET."""

# Earlier releases' dev mode signed with these on loopback; they are public, so never valid.
_RETIRED_DEV_SECRETS = ("frameio-kit-dev-webhook-secret", "frameio-kit-dev-action-secret")
KNOWN_SECRETS = frozenset({PLACEHOLDER, *_RETIRED_DEV_SECRETS})

SECRET_VARIABLES = ("WEBHOOK_SECRET", "CUSTOM_ACTION_SECRET")


def is_loopback_host(host: str) -> bool:
    """True only for `localhost` or an IP address in a loopback range (127.0.0.0/8, ::1).

    A name that merely starts like one (`127.attacker.example`) is not loopback: it resolves to
    whatever its owner likes.
    """
    name = host.strip().lower().removeprefix("[").removesuffix("]").removesuffix(".")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def configured_secrets(settings: Settings) -> dict[str, str | None]:
    """The signing secrets from the environment, by variable name."""
    values = (settings.webhook_secret, settings.custom_action_secret)
    return {
        name: v.get_secret_value() if v is not None else None for name, v in zip(SECRET_VARIABLES, values, strict=True)
    }


def refuse_known_secrets(settings: Settings) -> None:
    """Raise ValueError naming the variable whose secret is a placeholder or a public dev secret."""
    for name, value in configured_secrets(settings).items():
        if value in KNOWN_SECRETS:
            raise ValueError(
                f"{name} is a well-known placeholder or dev-mode value: set it to the secret Frame.io showed "
                "when you created the webhook or custom action"
            )


def new_secret() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class DevSession:
    """What one dev session generated, for `send` in another terminal. A secret the developer set
    themselves is not written here (None)."""

    port: int
    pid: int
    webhook_secret: str | None
    custom_action_secret: str | None


def session_path(settings: Settings) -> Path:
    """FRAMEIO_KIT_DEV_SECRETS_FILE, `~` expanded."""
    return settings.dev_secrets_file.expanduser()


def write_session(path: Path, session: DevSession) -> None:
    """Write `session` readable by this user only: the folder 0700, the file 0600 from creation
    (never briefly world-readable), replaced atomically."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(asdict(session), out)
    os.replace(temporary, path)


def read_session(path: Path) -> DevSession | None:
    """The session in `path`; None when there is none, or when others could read or change it."""
    try:
        info = path.stat()
        if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
            return None
        raw = json.loads(path.read_text(encoding="utf-8"))
        return DevSession(**raw)
    except (OSError, ValueError, TypeError):
        return None


def remove_session(path: Path, pid: int) -> None:
    """Remove `path` if it still holds session `pid` (a later session may have replaced it)."""
    current = read_session(path)
    if current is not None and current.pid == pid:
        path.unlink(missing_ok=True)
