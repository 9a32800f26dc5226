"""``rat-engine run`` / ``rat-engine demo`` TLS and HTTP/2 flags, down to the keywords serve()
receives (no socket: serve() and run_with_reload() are replaced)."""

from __future__ import annotations

import sys
import textwrap
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import rat_engine.server
from rat_engine import RatApp, cli

APP = textwrap.dedent(
    """
    from rat_engine import RatApp

    app = RatApp(name="cli-tls")
    {setup}

    @app.json("/api/x", methods=["GET"])
    def x(request_data):
        return {{"ok": True}}
    """
)


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[dict[str, Any]]]:
    calls: list[dict[str, Any]] = []

    def fake_serve(app: Any, **options: Any) -> None:
        calls.append(options)

    def fake_reload(target: str, **options: Any) -> None:
        calls.append({"reload": target, **options})

    monkeypatch.setattr(rat_engine.server, "serve", fake_serve)
    monkeypatch.setattr(rat_engine.server, "run_with_reload", fake_reload)
    monkeypatch.setattr(rat_engine.server, "configure_logging", lambda level: None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    yield calls
    sys.modules.pop("cli_tls_app", None)


def write_app(tmp_path: Path, setup: str = "") -> str:
    (tmp_path / "cli_tls_app.py").write_text(APP.format(setup=setup), encoding="utf-8")
    sys.modules.pop("cli_tls_app", None)
    return "cli_tls_app:app"


def pem_files(tmp_path: Path) -> tuple[str, str]:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("not read here")
    key.write_text("not read here")
    return str(cert), str(key)


def dev(tmp_path: Path, name: str) -> str:
    return str(tmp_path / "cache" / "rat_engine" / "dev-tls" / name)


def test_no_flags_leave_the_apps_own_choice(served: list[dict[str, Any]], tmp_path: Path) -> None:
    target = write_app(tmp_path, "app.enable_h2c()")
    assert cli.main(["run", target]) == 0
    [options] = served
    assert options["h2c"] is True and options["h2"] is True
    assert "ssl_certfile" not in options


def test_certificate_flags_and_no_h2(served: list[dict[str, Any]], tmp_path: Path) -> None:
    cert, key = pem_files(tmp_path)
    target = write_app(tmp_path, "app.enable_h2c()")
    cli.main(["run", target, "--ssl-certfile", cert, "--ssl-keyfile", key, "--no-h2", "--port", "8443"])
    [options] = served
    assert (options["ssl_certfile"], options["ssl_keyfile"]) == (cert, key)
    assert options["h2"] is False and options["h2c"] is True and options["port"] == 8443


def test_h2c_flag(served: list[dict[str, Any]], tmp_path: Path) -> None:
    cli.main(["run", write_app(tmp_path), "--h2c"])
    assert served[0]["h2c"] is True


@pytest.mark.parametrize(
    ("host", "names"),
    [
        ("127.0.0.1", ["localhost", "127.0.0.1"]),
        ("0.0.0.0", ["localhost", "127.0.0.1"]),
        ("192.168.7.9", ["localhost", "127.0.0.1", "192.168.7.9"]),
    ],
)
def test_dev_tls(served: list[dict[str, Any]], tmp_path: Path, host: str, names: list[str]) -> None:
    from cryptography import x509

    cli.main(["run", write_app(tmp_path), "--dev-tls", "--host", host])
    [options] = served
    assert options["ssl_certfile"] == dev(tmp_path, "cert.pem")
    assert options["ssl_keyfile"] == dev(tmp_path, "key.pem")
    assert options["h2"] is True and options["h2c"] is True
    cert = x509.load_pem_x509_certificate(Path(dev(tmp_path, "cert.pem")).read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    found = san.get_values_for_type(x509.DNSName) + [str(a) for a in san.get_values_for_type(x509.IPAddress)]
    assert found == names


def test_demo_takes_the_flags(
    served: list[dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo = types.ModuleType("rat_engine.demo")
    demo.app = RatApp(name="demo stand-in")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "rat_engine.demo", demo)
    cert, key = pem_files(tmp_path)
    cli.main(["demo", "--ssl-certfile", cert, "--ssl-keyfile", key, "--h2c"])
    cli.main(["demo", "--dev-tls"])
    first, second = served
    assert first["ssl_certfile"] == cert and first["h2c"] is True and first["port"] == 8087
    assert second["ssl_certfile"] == dev(tmp_path, "cert.pem") and second["h2c"] is True


def test_reload_with_tls(served: list[dict[str, Any]], tmp_path: Path) -> None:
    cert, key = pem_files(tmp_path)
    cli.main(["run", "cli_tls_app:app", "--reload", "--ssl-certfile", cert, "--ssl-keyfile", key])
    cli.main(["run", "cli_tls_app:app", "--reload", "--dev-tls"])
    assert served[0]["reload"] == "cli_tls_app:app"
    assert (served[0]["ssl_certfile"], served[0]["ssl_keyfile"]) == (cert, key)
    assert served[1]["ssl_certfile"] == dev(tmp_path, "cert.pem")
    assert "h2" not in served[0] and "h2c" not in served[1]


def test_reload_refuses_the_protocol_options() -> None:
    with pytest.raises(ValueError, match="h2c"):
        rat_engine.server.run_with_reload("x:app", "127.0.0.1", 0, h2c=True)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--ssl-keyfile", "{key}"], "--ssl-keyfile needs --ssl-certfile"),
        (["--ssl-certfile", "missing.pem"], "--ssl-certfile: no such file 'missing.pem'"),
        (["--dev-tls", "--ssl-certfile", "{cert}"], "--dev-tls makes its own certificate"),
        (["--reload", "--h2c"], "do not work with --reload"),
        (["--dev-tls", "--host", "bad host"], "--dev-tls: not a hostname"),
    ],
)
def test_wrong_combinations_say_what_is_wrong(
    served: list[dict[str, Any]], tmp_path: Path, argv: list[str], message: str
) -> None:
    cert, key = pem_files(tmp_path)
    argv = [a.format(cert=cert, key=key) for a in argv]
    with pytest.raises(SystemExit, match=message):
        cli.main(["run", write_app(tmp_path), *argv])
    assert not served


def test_dev_tls_without_cryptography(
    served: list[dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = write_app(tmp_path)
    monkeypatch.setitem(sys.modules, "cryptography", None)
    with pytest.raises(SystemExit, match=r"pip install 'rat_engine\[tls\]'"):
        cli.main(["run", target, "--dev-tls"])
    assert not served


def test_help_lists_the_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    text = capsys.readouterr().out
    for flag in ("--ssl-certfile", "--ssl-keyfile", "--dev-tls", "--no-h2", "--h2c"):
        assert flag in text
