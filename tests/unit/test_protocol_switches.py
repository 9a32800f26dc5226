"""RAT Engine's protocol names on RatApp (enable_h2, enable_h2c, configure_protocols,
is_h2_enabled, is_h2c_enabled, enable_development_mode), written as RAT Engine code calls them,
and what app.run() hands to the server for each choice (no socket: serve() is replaced)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import rat_engine.server
from rat_engine import RatApp


class FakeHandle:
    port = 43210
    url = "https://127.0.0.1:43210"
    running = True

    def stop(self, timeout: float | None = None) -> None:
        pass


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """Every serve() call app.run() makes, as its keywords; logging setup left alone."""
    calls: list[dict[str, Any]] = []

    def fake_serve(app: Any, **options: Any) -> Any:
        calls.append(options)
        return FakeHandle() if not options["blocking"] else None

    monkeypatch.setattr(rat_engine.server, "serve", fake_serve)
    monkeypatch.setattr(rat_engine.server, "configure_logging", lambda level: None)
    yield calls


@pytest.fixture(autouse=True)
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The development certificate goes into this test's own cache directory."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_defaults_are_h2_on_tls_and_no_h2c() -> None:
    app = RatApp()
    assert app.is_h2_enabled() is True
    assert app.is_h2c_enabled() is False


def test_the_switches_chain_and_report_their_state() -> None:
    app = RatApp()
    assert app.enable_h2c() is app
    assert app.is_h2c_enabled() and app.is_h2_enabled()
    assert app.configure_protocols(enable_h2=False) is app
    assert not app.is_h2_enabled() and app.is_h2c_enabled()  # h2c left as it was
    assert app.enable_h2() is app and app.is_h2_enabled()
    app.configure_protocols(enable_h2c=False, enable_h2=False)
    assert (app.is_h2_enabled(), app.is_h2c_enabled()) == (False, False)
    app.configure_protocols(True, True)  # RAT's positional order: enable_h2c, enable_h2
    assert (app.is_h2_enabled(), app.is_h2c_enabled()) == (True, True)
    app.configure_protocols()
    assert (app.is_h2_enabled(), app.is_h2c_enabled()) == (True, True)


def test_two_apps_do_not_share_their_switches() -> None:
    first, second = RatApp(), RatApp()
    first.configure_protocols(enable_h2c=True, enable_h2=False)
    assert (second.is_h2_enabled(), second.is_h2c_enabled()) == (True, False)


def dev(app: RatApp) -> None:
    app.enable_development_mode(hostnames=["localhost", "127.0.0.1"])


def dev_file(cache: Path, name: str) -> str:
    return str(cache / "rat_engine" / "dev-tls" / name)


# (what the app calls, what run() is given, what serve() must get; "DEV:x" = the dev cert's x)
CASES: list[tuple[str, Callable[[RatApp], Any], dict[str, Any], dict[str, Any]]] = [
    ("nothing", lambda app: None, {}, {"h2": True, "h2c": False, "ssl_certfile": None}),
    ("h2 off", lambda app: app.configure_protocols(enable_h2=False), {}, {"h2": False, "h2c": False}),
    ("h2c", lambda app: app.enable_h2c(), {}, {"h2": True, "h2c": True}),
    ("enable_h2", lambda app: app.enable_h2(), {}, {"h2": True, "h2c": False}),
    (
        "both configured",
        lambda app: app.configure_protocols(enable_h2c=True, enable_h2=False),
        {},
        {"h2": False, "h2c": True},
    ),
    (
        "TLS files given, h2 by default",
        lambda app: None,
        {"ssl_certfile": "c.pem", "ssl_keyfile": "k.pem"},
        {"h2": True, "h2c": False, "ssl_certfile": "c.pem", "ssl_keyfile": "k.pem"},
    ),
    ("run's h2 wins", lambda app: app.enable_h2(), {"h2": False}, {"h2": False}),
    ("run's h2c wins", lambda app: app.enable_h2c(), {"h2c": False}, {"h2c": False}),
    ("run's h2c alone", lambda app: None, {"h2c": True}, {"h2": True, "h2c": True}),
    (
        "development mode",
        dev,
        {},
        {"h2": True, "h2c": True, "ssl_certfile": "DEV:cert.pem", "ssl_keyfile": "DEV:key.pem"},
    ),
    (
        "development mode, run's certificate wins",
        dev,
        {"ssl_certfile": "c.pem", "ssl_keyfile": "k.pem"},
        {"h2": True, "h2c": True, "ssl_certfile": "c.pem", "ssl_keyfile": "k.pem"},
    ),
    (
        "development mode, run's combined PEM wins (no key file)",
        dev,
        {"ssl_certfile": "both.pem"},
        {"ssl_certfile": "both.pem", "ssl_keyfile": None},
    ),
    (
        "development mode, then h2c off",
        lambda app: (dev(app), app.configure_protocols(enable_h2c=False)),
        {},
        {"h2": True, "h2c": False, "ssl_certfile": "DEV:cert.pem"},
    ),
    (
        "h2 off, then development mode turns it on",
        lambda app: (app.configure_protocols(enable_h2=False), dev(app)),
        {},
        {"h2": True, "h2c": True},
    ),
    (
        "development mode, run turns h2 off",
        dev,
        {"h2": False},
        {"h2": False, "h2c": True, "ssl_certfile": "DEV:cert.pem"},
    ),
]


@pytest.mark.parametrize(("setup", "given", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_run_passes_the_protocol_choice_to_serve(
    served: list[dict[str, Any]],
    cache_home: Path,
    setup: Callable[[RatApp], Any],
    given: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    app = RatApp()
    setup(app)
    app.run(port=8443, **given)
    [options] = served
    for name, value in expected.items():
        if isinstance(value, str) and value.startswith("DEV:"):
            value = dev_file(cache_home, value[4:])
        assert options.get(name) == value, name


def test_development_mode_makes_the_certificate_for_the_hostnames_at_once(cache_home: Path) -> None:
    from cryptography import x509

    app = RatApp()
    app.enable_development_mode(hostnames=["localhost", "127.0.0.1", "dev.test"])
    pem = Path(dev_file(cache_home, "cert.pem")).read_bytes()
    cert = x509.load_pem_x509_certificate(pem)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost", "dev.test"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    RatApp().enable_development_mode(["dev.test", "127.0.0.1", "localhost"])  # same names: kept
    assert Path(dev_file(cache_home, "cert.pem")).read_bytes() == pem


def test_development_mode_logs_the_https_url(
    served: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    app = RatApp()
    dev(app)
    with caplog.at_level(logging.INFO, "rat_engine"):
        app.run(host="127.0.0.1", port=8443)  # blocking: logged before serving
        handle = app.run(host="0.0.0.0", port=0, blocking=False)  # the port is known afterwards
    assert handle is not None
    lines = [r.getMessage() for r in caplog.records if "development mode" in r.getMessage()]
    assert len(lines) == 2
    assert lines[0].startswith("development mode: https://127.0.0.1:8443/ ")
    assert lines[1].startswith("development mode: https://localhost:43210/ ")  # a name the cert has
    assert "localhost, 127.0.0.1" in lines[0] and "cert.pem" in lines[0]


def test_no_development_url_with_the_callers_certificate(
    served: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    app = RatApp()
    dev(app)
    with caplog.at_level(logging.INFO, "rat_engine"):
        app.run(port=8443, ssl_certfile="c.pem", ssl_keyfile="k.pem")
    assert not [r for r in caplog.records if "development mode" in r.getMessage()]


def test_without_cryptography_development_mode_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "cryptography", None)
    app = RatApp()
    with pytest.raises(ImportError, match=r"pip install 'rat_engine\[tls\]'"):
        app.enable_development_mode()
    assert not app.is_h2c_enabled()  # nothing changed
