"""A hand-written RSGI app on granian (--interface rsgi --loop uvloop, 1 worker): the floor of
a Rust HTTP server calling into Python."""

import json
import os
import sys
from pathlib import Path

from _common import BACKLOG, HOST, PAYLOAD, port

BODY = json.dumps(PAYLOAD, separators=(",", ":")).encode()
HEADERS = [("content-type", "application/json")]


async def app(scope, proto):
    if scope.path == "/json":
        proto.response_bytes(200, HEADERS, BODY)
    else:
        proto.response_empty(404, [])


if __name__ == "__main__":
    from granian import Granian
    from granian.constants import Interfaces, Loops
    from granian.log import LogLevels

    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    os.environ["PYTHONPATH"] = here + os.pathsep + os.environ.get("PYTHONPATH", "")
    Granian(
        "granian_rsgi_json:app",
        address=HOST,
        port=port(),
        interface=Interfaces.RSGI,
        loop=Loops.uvloop,
        workers=1,
        backlog=BACKLOG,
        log_level=LogLevels.warning,
        log_access=False,
        working_dir=Path(here),
    ).serve()
