"""A second server on a taken port says so in one line (which address, what to do), not with a
traceback; with blocking=False it raises a clear AddressInUse."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from support import REPO_ROOT

from rat_engine import RatApp
from rat_engine.server.runner import AddressInUse

SCRIPT = """
import sys
from rat_engine import RatApp
app = RatApp(name="second")
app.run(host="127.0.0.1", port=int(sys.argv[1]))
"""


@pytest.fixture
def taken_port() -> object:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


def test_a_blocking_run_on_a_taken_port_prints_one_line_and_exits_1(taken_port: int) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(taken_port)],
        capture_output=True, text=True, timeout=30, cwd=REPO_ROOT,
    )  # fmt: skip
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert (
        f"127.0.0.1:{taken_port} is already in use: stop the other server, or pick another port" in lines[0]
    )
    assert "Traceback" not in result.stderr


def test_a_background_run_raises_address_in_use(taken_port: int) -> None:
    with pytest.raises(AddressInUse, match=f"127.0.0.1:{taken_port} is already in use"):
        RatApp().run(host="127.0.0.1", port=taken_port, blocking=False, log_level="warning")
