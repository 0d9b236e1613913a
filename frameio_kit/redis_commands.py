"""What the CLI commands that read Redis share: an unreachable Redis or broker is one line, not a traceback."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from shared.logs import printable
from shared.settings import Settings, get_settings


def run_or_report(command: str, body: Callable[[argparse.Namespace, Settings], int], args: argparse.Namespace) -> int:
    """`body(args, settings)`; an unreachable Redis or broker is one line on stderr and exit 1."""
    import redis
    from kombu.exceptions import OperationalError

    try:
        return body(args, get_settings())
    except (redis.RedisError, OperationalError) as exc:
        print(printable(f"frameio-kit {command}: Redis unavailable: {type(exc).__name__}: {exc}"), file=sys.stderr)
        return 1
