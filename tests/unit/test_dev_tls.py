"""The development certificate (rat_engine/server/tls.py): the names it covers, the cache it is
kept in (reused while valid for the same names, made again otherwise) and its key's permissions."""

from __future__ import annotations

import datetime
import ipaddress
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509  # a test dependency (and rat_engine[tls])
from cryptography.hazmat.primitives import serialization

from rat_engine.server import tls
from rat_engine.server.tls import development_certificate, normalize_hostnames


def load(path: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(Path(path).read_bytes())


def san(cert: x509.Certificate) -> tuple[list[str], list[object]]:
    value = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return value.get_values_for_type(x509.DNSName), value.get_values_for_type(x509.IPAddress)


def test_hostnames_and_ip_addresses_are_in_the_subject_alt_name(tmp_path: Path) -> None:
    made = development_certificate(["localhost", "127.0.0.1", "::1", "dev.example.test"], tmp_path)
    cert = load(made.certfile)
    dns, ips = san(cert)
    assert dns == ["localhost", "dev.example.test"]
    # IP addresses as iPAddress entries (a DNSName "127.0.0.1" would not match for browsers)
    assert ips == [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
    assert made.hostnames == ("localhost", "127.0.0.1", "::1", "dev.example.test")
    assert made.created
    assert cert.issuer == cert.subject  # self-signed
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.SERVER_AUTH in usage
    now = datetime.datetime.now(datetime.UTC)
    assert cert.not_valid_before_utc <= now < cert.not_valid_after_utc
    assert made.not_after == cert.not_valid_after_utc
    assert datetime.timedelta(days=360) < cert.not_valid_after_utc - now <= datetime.timedelta(days=366)
    key = serialization.load_pem_private_key(Path(made.keyfile).read_bytes(), password=None)
    assert key.public_key() == cert.public_key()


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_the_key_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    folder = tmp_path / "cache" / "dev-tls"
    made = development_certificate(directory=folder)
    assert stat.S_IMODE(os.stat(made.keyfile).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(made.certfile).st_mode) == 0o644
    assert sorted(p.name for p in folder.iterdir()) == ["cert.pem", "key.pem"]  # no temporary left


def test_the_cached_certificate_is_reused_for_the_same_names(tmp_path: Path) -> None:
    first = development_certificate(["localhost", "127.0.0.1"], tmp_path)
    pem = Path(first.certfile).read_bytes()
    again = development_certificate(["127.0.0.1", "LOCALHOST", "localhost."], tmp_path)  # same set
    assert not again.created
    assert (again.certfile, again.keyfile) == (first.certfile, first.keyfile)
    assert Path(again.certfile).read_bytes() == pem


@pytest.mark.parametrize(
    "spoil",
    [
        "other names",
        "fewer names",
        "expires within a day",
        "key readable by others",
        "key of another certificate",
        "garbage certificate",
        "key missing",
    ],
)
def test_the_certificate_is_made_again_when_it_does_not_fit(tmp_path: Path, spoil: str) -> None:
    names = ["localhost", "127.0.0.1"]
    first = development_certificate(names, tmp_path, days=0 if spoil == "expires within a day" else 365)
    pem = Path(first.certfile).read_bytes()
    if spoil == "other names":
        names = ["localhost", "127.0.0.1", "192.168.1.20"]
    elif spoil == "fewer names":
        names = ["localhost"]
    elif spoil == "key readable by others":
        if os.name != "posix":
            pytest.skip("POSIX file modes")
        os.chmod(first.keyfile, 0o644)
    elif spoil == "key of another certificate":
        other = development_certificate(names, tmp_path / "other")
        Path(first.keyfile).write_bytes(Path(other.keyfile).read_bytes())
    elif spoil == "garbage certificate":
        Path(first.certfile).write_bytes(b"-----BEGIN CERTIFICATE-----\nnope\n")
    elif spoil == "key missing":
        os.unlink(first.keyfile)
    again = development_certificate(names, tmp_path)
    assert again.created
    assert Path(again.certfile).read_bytes() != pem
    dns, ips = san(load(again.certfile))
    assert sorted(dns + [str(ip) for ip in ips]) == sorted(normalize_hostnames(names))
    if os.name == "posix":
        assert stat.S_IMODE(os.stat(again.keyfile).st_mode) == 0o600
    assert not development_certificate(names, tmp_path).created  # and now it is kept


def test_the_default_cache_is_under_xdg_cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    made = development_certificate()
    assert Path(made.certfile) == tmp_path / "xdg" / "rat_engine" / "dev-tls" / "cert.pem"
    assert made.hostnames == ("localhost", "127.0.0.1")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert tls.default_cache_dir() == tmp_path / "home" / ".cache" / "rat_engine" / "dev-tls"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("localhost", ("localhost",)),  # one name as a string, not its letters
        (["Example.TEST.", "example.test"], ("example.test",)),
        (["[::1]", "0:0:0:0:0:0:0:1", " 127.0.0.1 "], ("::1", "127.0.0.1")),
        (["bücher.example"], ("xn--bcher-kva.example",)),
        (["*.dev.test"], ("*.dev.test",)),
    ],
)
def test_hostnames_are_normalized(given: object, expected: tuple[str, ...]) -> None:
    assert normalize_hostnames(given) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [[], [""], ["https://localhost"], ["local host"], ["a/b"]])
def test_names_that_cannot_be_in_a_certificate_are_refused(bad: list[str], tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        development_certificate(bad, tmp_path)
    assert not any(tmp_path.iterdir())


def test_without_cryptography_the_error_names_the_pip_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "cryptography", None)  # import cryptography -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'rat_engine\[tls\]'"):
        development_certificate(directory=tmp_path)


def test_importing_the_module_does_nothing() -> None:
    code = (
        "import sys, rat_engine, rat_engine.server.tls\n"
        "assert 'cryptography' not in sys.modules, 'cryptography imported'\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": "/nonexistent/rat-test"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
