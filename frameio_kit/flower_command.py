"""`frameio-kit flower`: Celery's Flower for the workers, refused without a real FLOWER_BASIC_AUTH."""

from __future__ import annotations

import argparse
import os
import sys

EXAMPLE_PASSWORD = "change-me"  # noqa: S105 - .env.example's placeholder: public, so refused


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the `flower` command on the CLI's subparsers."""
    parser = sub.add_parser(
        "flower",
        help="run Flower (celery -A workers flower) once FLOWER_BASIC_AUTH holds a real user:password",
        description=(
            "Run Flower, the Celery dashboard. Needs FLOWER_BASIC_AUTH (user:password, not .env.example's) and the "
            "broker (REDIS_URL or FRAMEIO_KIT_BROKER_URL); other options come from its FLOWER_* environment "
            "variables (FLOWER_PORT, FLOWER_ADDRESS...)."
        ),
    )
    parser.set_defaults(run=run)


def basic_auth_problem(value: str | None) -> str | None:
    """Why FLOWER_BASIC_AUTH (`user:password[,user:password...]`, Flower's format) must not be used, or None."""
    if not value or not value.strip():
        return "FLOWER_BASIC_AUTH is empty or missing: set it to user:password"
    for pair in value.split(","):
        user, sep, password = pair.partition(":")
        if not sep or not user.strip():
            return "FLOWER_BASIC_AUTH must be user:password (comma-separated for several users)"
        if not password.strip():
            return f"FLOWER_BASIC_AUTH gives user {user.strip()!r} an empty password"
        if password.strip() == EXAMPLE_PASSWORD:
            return f"FLOWER_BASIC_AUTH still has the example password ({EXAMPLE_PASSWORD!r}) from .env.example"
    return None


def run(args: argparse.Namespace) -> int:
    # Flower reads FLOWER_BASIC_AUTH itself once exec'd; this only vets the value it will see.
    problem = basic_auth_problem(os.environ.get("FLOWER_BASIC_AUTH"))
    if problem is not None:
        print(f"frameio-kit flower: refusing to start: {problem}", file=sys.stderr)
        return 2
    from shared.app.loading import refuse_collisions

    refuse_collisions([os.getcwd(), *sys.path])  # `python -m` puts the working directory first in the child
    argv = [sys.executable, "-m", "celery", "-A", "workers", "flower"]
    sys.stdout.flush()
    os.execvp(argv[0], argv)  # noqa: S606 - replaces this process with Flower, same environment
    return 0  # pragma: no cover - execvp does not return
