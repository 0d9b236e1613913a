"""`python -m tests.install_standins`: Adobe IMS and the Frame.io V4 API stand-ins on one local port,
for trying /install without Adobe credentials (docs/install.md, "Try the install flow locally").

The same server the install tests use (tests/install_support.py's `start_api`): `admin-1` administers
acc-A (workspaces ws-1, ws-2), acc-B (ws-9) and acc-C (ws-5), and the authorize page approves at once.
Runs in the foreground until Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys

import uvicorn

from tests.frameio_standin import FrameioStandIn
from tests.ims_standin import ImsStandIn
from tests.install_support import ADMIN, MEMBER


def build(url: str) -> ImsStandIn:
    """The stand-in pair of tests/install_support.py, answering at `url`."""
    ims = ImsStandIn(sign_in_as=ADMIN, url=url)
    api = FrameioStandIn(
        ims,
        members={ADMIN: ["acc-A", "acc-B", "acc-C"], MEMBER: ["acc-A", "acc-B"]},
        roles={ADMIN: {"acc-A": "admin", "acc-B": "owner", "acc-C": "admin"}},
        workspaces={"acc-A": ["ws-1", "ws-2"], "acc-B": ["ws-9"], "acc-C": ["ws-5"]},
    )
    ims.extra_routes = api.routes()
    return ims


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.install_standins", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8900, help="port on 127.0.0.1 (default 8900)")
    args = parser.parse_args(argv)
    url = f"http://127.0.0.1:{args.port}"
    print(f"IMS and Frame.io API stand-ins at {url}: export FRAMEIO_KIT_IMS_URL={url} FRAMEIO_KIT_API_URL={url}")
    sys.stdout.flush()
    uvicorn.run(build(url).app(), host="127.0.0.1", port=args.port, log_level="warning", lifespan="off")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
