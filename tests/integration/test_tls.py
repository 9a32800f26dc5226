"""TLS on a real server: ``app.run(ssl_certfile=..., ssl_keyfile=...)`` with rat_engine's
development certificate. ALPN offers ``h2`` and ``http/1.1`` (only ``http/1.1`` with h2 off),
HTTP/1.1 requests and event streams work over TLS, and ``enable_development_mode()`` serves
https with a certificate a verifying client accepts for localhost and 127.0.0.1.

HTTP/2 framing itself is tested with the h2 protocol; here a connection that chose h2 is only
handshaken and closed.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.live import run_live
from support.tls import certificate, client_context, https_request, tls_connect

from rat_engine import RatApp

pytestmark = pytest.mark.timeout(60)

GET_HELLO = b"GET /api/hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


def make_app() -> RatApp:
    app = RatApp(name="tls-test")

    @app.json("/api/hello", methods=["GET"])
    def hello(request_data: Any) -> Any:
        return {"hello": "tls", "scheme": request_data["scheme"]}

    @app.sse("/events")
    def events(request_data: Any) -> Any:
        for n in range(3):
            yield {"n": n}

    return app


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return certificate(tmp_path_factory.mktemp("dev-tls"))


@pytest.fixture(scope="module")
def tls_server(cert: Any) -> Iterator[Any]:
    with run_live(make_app(), ssl_certfile=cert.certfile, ssl_keyfile=cert.keyfile) as handle:
        yield handle


def test_the_url_says_https(tls_server: Any) -> None:
    assert tls_server.url == f"https://127.0.0.1:{tls_server.port}"


def test_alpn_selects_h2_when_the_client_offers_it(tls_server: Any, cert: Any) -> None:
    with tls_connect(tls_server.port, cert.certfile, ["h2", "http/1.1"]) as sock:
        assert sock.selected_alpn_protocol() == "h2"
        assert sock.version() in ("TLSv1.2", "TLSv1.3")


@pytest.mark.parametrize(("offered", "selected"), [(["http/1.1"], "http/1.1"), ([], None)])
def test_an_http11_client_gets_json_over_tls(
    tls_server: Any, cert: Any, offered: list[str], selected: str | None
) -> None:
    response, chosen = https_request(tls_server.port, GET_HELLO, cert.certfile, offered)
    assert chosen == selected
    assert response.status == 200, response
    assert response.head.startswith(b"HTTP/1.1 200")
    assert response.header("content-type") == "application/json"
    assert json.loads(response.body) == {"hello": "tls", "scheme": "https"}


@pytest.mark.parametrize("hostname", ["localhost", "127.0.0.1", "::1"])
def test_the_certificate_verifies_for_each_of_its_names(tls_server: Any, cert: Any, hostname: str) -> None:
    with tls_connect(tls_server.port, cert.certfile, ["http/1.1"], server_hostname=hostname) as sock:
        assert sock.getpeercert()  # verified: the peer certificate is there


def test_a_name_the_certificate_lacks_is_refused(tls_server: Any, cert: Any) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="match"):
        with tls_connect(tls_server.port, cert.certfile, ["http/1.1"], server_hostname="example.com"):
            pass


def test_httpx_over_tls_json_and_an_event_stream(tls_server: Any, cert: Any) -> None:
    with httpx.Client(base_url=tls_server.url, verify=client_context(cert.certfile, ()), timeout=5) as client:
        assert client.get("/api/hello").json()["hello"] == "tls"
        with client.stream("GET", "/events") as response:
            assert response.http_version == "HTTP/1.1"
            assert response.headers["content-type"].startswith("text/event-stream")
            body = b"".join(response.iter_bytes())
    assert [json.loads(line[5:]) for line in body.decode().splitlines() if line.startswith("data:")] == [
        {"n": 0},
        {"n": 1},
        {"n": 2},
    ]


@pytest.mark.parametrize("how", ["run(h2=False)", "configure_protocols(enable_h2=False)"])
def test_with_h2_off_alpn_selects_http11(cert: Any, how: str) -> None:
    app = make_app()
    options: dict[str, Any] = {"ssl_certfile": cert.certfile, "ssl_keyfile": cert.keyfile}
    if how == "run(h2=False)":
        options["h2"] = False
    else:
        app.configure_protocols(enable_h2=False)
    with run_live(app, **options) as handle:
        response, chosen = https_request(handle.port, GET_HELLO, cert.certfile, ["h2", "http/1.1"])
    assert chosen == "http/1.1"
    assert response.status == 200 and json.loads(response.body)["hello"] == "tls"


def test_development_mode_serves_https_with_h2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    app = make_app()
    app.enable_development_mode(hostnames=["localhost", "127.0.0.1"])
    certfile = str(tmp_path / "rat_engine" / "dev-tls" / "cert.pem")
    with run_live(app) as handle:
        assert handle.url.startswith("https://127.0.0.1:")
        with tls_connect(handle.port, certfile, ["h2", "http/1.1"], server_hostname="127.0.0.1") as sock:
            assert sock.selected_alpn_protocol() == "h2"
        response, chosen = https_request(handle.port, GET_HELLO, certfile, ["http/1.1"])
    assert chosen == "http/1.1"
    assert response.status == 200
