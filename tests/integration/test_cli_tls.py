"""``rat-engine run`` with TLS, in a subprocess: ``--dev-tls`` serves https with the cached
development certificate (and logs the URL), ``--ssl-certfile/--ssl-keyfile --no-h2`` offers only
HTTP/1.1 by ALPN. Each process is stopped by its PID."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
from support.live import live_subprocess
from support.net import free_port, wait_until
from support.tls import certificate, https_request, tls_connect

pytestmark = pytest.mark.timeout(60)

APP = textwrap.dedent(
    """
    from rat_engine import RatApp

    app = RatApp(name="cli-tls")


    @app.json("/api/hello", methods=["GET"])
    def hello(request_data):
        return {"scheme": request_data["scheme"]}
    """
)

GET = b"GET /api/hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


def test_dev_tls(tmp_path: Path) -> None:
    (tmp_path / "tls_app.py").write_text(APP, encoding="utf-8")
    port = free_port()
    argv = [sys.executable, "-m", "rat_engine", "run", "tls_app:app", "--port", str(port), "--dev-tls"]
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    with live_subprocess(argv=argv, port=port, env=env, cwd=tmp_path) as proc:
        certfile = str(tmp_path / "cache" / "rat_engine" / "dev-tls" / "cert.pem")
        with tls_connect(port, certfile, ["h2", "http/1.1"], server_hostname="127.0.0.1") as sock:
            assert sock.selected_alpn_protocol() == "h2"
        response, chosen = https_request(port, GET, certfile, ["http/1.1"])
        assert chosen == "http/1.1"
        assert response.status == 200 and json.loads(response.body) == {"scheme": "https"}
        wait_until(lambda: "listening on https://" in proc.output(), 5, "the startup line")
    output = proc.output()
    assert f"development mode: https://127.0.0.1:{port}/" in output, output
    assert "self-signed certificate for localhost, 127.0.0.1" in output
    assert "Traceback" not in output


def test_certificate_files_and_no_h2(tmp_path: Path) -> None:
    (tmp_path / "tls_app.py").write_text(APP, encoding="utf-8")
    cert = certificate(tmp_path / "certs")
    port = free_port()
    argv = [sys.executable, "-m", "rat_engine", "run", "tls_app:app", "--port", str(port)]
    argv += ["--ssl-certfile", cert.certfile, "--ssl-keyfile", cert.keyfile, "--no-h2"]
    with live_subprocess(argv=argv, port=port, cwd=tmp_path) as proc:
        response, chosen = https_request(port, GET, cert.certfile, ["h2", "http/1.1"])
        assert chosen == "http/1.1"
        assert response.status == 200 and json.loads(response.body) == {"scheme": "https"}
    assert f"listening on https://127.0.0.1:{port}" in proc.output()
