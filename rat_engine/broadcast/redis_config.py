"""Which Redis a broadcast URL names, and the redis-py client that reaches it.

Three shapes of deployment, one URL each:

* ``redis://[user:password@]host:6379/0`` (also ``rediss://``, ``unix://``, ``valkey://``): one
  Redis. Its query string goes to redis-py as before.
* ``redis+sentinel://[user:password@]host:26379,host:26379,host:26379/<service>/<db>`` (also
  ``rediss+sentinel://``): the primary of ``<service>``, found through the sentinels and found
  again after a failover (redis-py's ``Sentinel.master_for``). The URL's user and password are
  the Redis servers'; sentinels that need their own are given ``sentinel_password=`` (and
  ``sentinel_username=``) in the query.
* ``redis+cluster://[user:password@]host:7000,host:7001/`` (also ``rediss+cluster://``): a
  Redis Cluster, reached through any of the nodes listed.

Query parameters read here (and removed before the rest goes to redis-py): ``durability``
(``none`` or ``replicated``: ``publish`` returns once a replica has the message) and
``replica_timeout`` (seconds ``WAIT`` gives the replicas; default 1). For the sentinel and
cluster forms, ``ssl_cert_reqs``, ``ssl_ca_certs``, ``ssl_certfile`` and ``ssl_keyfile`` are
passed to the TLS connections.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

__all__ = [
    "DURABILITIES",
    "RedisTarget",
    "is_redis_url",
    "parse_target",
    "safe_url",
]

Kind = Literal["single", "sentinel", "cluster"]
#: ``broadcast_durability`` values: ``none`` (Redis's asynchronous replication), ``replicated``.
DURABILITIES = ("none", "replicated")
_DEFAULT_REPLICA_TIMEOUT = 1.0
_SINGLE_SCHEMES = ("redis", "rediss", "unix", "valkey", "valkeys")
_TLS_OPTIONS = ("ssl_cert_reqs", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile")
_OWN_OPTIONS = ("durability", "replica_timeout", "sentinel_password", "sentinel_username")
_DEFAULT_PORTS = {"sentinel": 26379, "cluster": 6379}


def is_redis_url(url: str) -> bool:
    """True for every URL form this module understands (checked before redis-py is imported)."""
    scheme = url.split("://", 1)[0].lower()
    base, plus, topology = scheme.partition("+")
    if plus:
        return base in ("redis", "rediss", "valkey", "valkeys") and topology in ("sentinel", "cluster")
    return scheme in _SINGLE_SCHEMES


def safe_url(url: str) -> str:
    """``url`` without its password (nor the sentinels'), for log lines."""
    scheme, sep, rest = url.partition("://")
    location, qmark, query = rest.partition("?")
    userinfo, at, host = location.rpartition("@")
    if qmark:
        pairs = [(k, "***" if k == "sentinel_password" else v) for k, v in parse_qsl(query)]
        query = urlencode(pairs, safe="*")
    return f"{scheme}{sep}{'***@' if at else ''}{host}{qmark}{query}"


@dataclasses.dataclass(frozen=True)
class RedisTarget:
    """What a broadcast URL asks for (see the module docstring)."""

    kind: Kind
    #: The URL as given (log it through :func:`safe_url`).
    url: str
    #: ``single``: the URL redis-py's ``from_url`` gets (our own query parameters removed).
    redis_url: str = ""
    #: ``sentinel``: the sentinels; ``cluster``: the startup nodes.
    hosts: tuple[tuple[str, int], ...] = ()
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = None
    tls: bool = False
    tls_options: tuple[tuple[str, str], ...] = ()
    durability: str = "none"
    replica_timeout: float = _DEFAULT_REPLICA_TIMEOUT

    @property
    def replicated(self) -> bool:
        return self.durability == "replicated"

    def describe(self) -> str:
        """The URL without secrets, for logs and errors."""
        return safe_url(self.url)

    def connection_options(self) -> dict[str, Any]:
        """Keyword arguments for the connections to the Redis servers (not the sentinels)."""
        options: dict[str, Any] = {}
        if self.username is not None:
            options["username"] = self.username
        if self.password is not None:
            options["password"] = self.password
        if self.tls:
            options["ssl"] = True
            options.update(self.tls_options)
        return options

    def sentinel_options(self) -> dict[str, Any]:
        """Keyword arguments for the connections to the sentinels."""
        options: dict[str, Any] = {}
        if self.sentinel_username is not None:
            options["username"] = self.sentinel_username
        if self.sentinel_password is not None:
            options["password"] = self.sentinel_password
        if self.tls:
            options["ssl"] = True
            options.update(self.tls_options)
        return options


def parse_target(url: str, durability: str | None = None) -> RedisTarget:
    """Read a broadcast URL. ``durability`` is the app setting; the URL's ``?durability=``
    wins when both are given, so a deployment can set it through ``RAT_BROADCAST_URL`` alone.

    Raises:
        ValueError: a malformed URL or an unknown option value (with the URL, without secrets).
    """
    if not is_redis_url(url):
        raise ValueError(f"not a Redis URL: {safe_url(url)!r}")
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    own = {k: v for k, v in query if k in _OWN_OPTIONS}
    rest = [(k, v) for k, v in query if k not in _OWN_OPTIONS]
    chosen = own.get("durability") or durability or "none"
    if chosen not in DURABILITIES:
        raise ValueError(
            f"unknown broadcast durability {chosen!r} in {safe_url(url)!r}; use one of {DURABILITIES}"
        )
    timeout = _positive_float(own.get("replica_timeout"), url)
    common: dict[str, Any] = {"url": url, "durability": chosen, "replica_timeout": timeout}
    scheme = parts.scheme.lower()
    base, _, topology = scheme.partition("+")
    if not topology:
        # Only our own parameters are taken out; the rest of the URL goes to redis-py untouched.
        single = (
            url
            if len(rest) == len(query)
            else url.partition("?")[0] + (f"?{urlencode(rest)}" if rest else "")
        )
        if base in ("valkey", "valkeys"):
            single = ("rediss" if base == "valkeys" else "redis") + single[len(base) :]
        return RedisTarget(kind="single", redis_url=single, **common)

    userinfo, _, hostlist = parts.netloc.rpartition("@")
    username, password = _credentials(userinfo)
    hosts = tuple(_host_port(h, _DEFAULT_PORTS[topology], url) for h in hostlist.split(",") if h)
    if not hosts:
        raise ValueError(f"no {topology} host in {safe_url(url)!r}")
    unknown = sorted({k for k, _ in rest} - set(_TLS_OPTIONS))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} in {safe_url(url)!r}")
    common.update(
        hosts=hosts,
        username=username,
        password=password,
        sentinel_username=own.get("sentinel_username"),
        sentinel_password=own.get("sentinel_password"),
        tls=base in ("rediss", "valkeys"),
        tls_options=tuple(rest),
    )
    segments = [unquote(s) for s in parts.path.split("/") if s]
    if topology == "sentinel":
        if not segments or len(segments) > 2:
            raise ValueError(f"expected /<service_name>[/<db>] in {safe_url(url)!r}")
        db = _int(segments[1], url) if len(segments) == 2 else 0
        return RedisTarget(kind="sentinel", service=segments[0], db=db, **common)
    if segments not in ([], ["0"]):
        raise ValueError(f"a Redis Cluster has only database 0: {safe_url(url)!r}")
    return RedisTarget(kind="cluster", **common)


def _credentials(userinfo: str) -> tuple[str | None, str | None]:
    if not userinfo:
        return None, None
    user, colon, password = userinfo.partition(":")
    return (unquote(user) or None), (unquote(password) if colon else None)


def _host_port(text: str, default_port: int, url: str) -> tuple[str, int]:
    if text.startswith("["):  # [ipv6]:port
        host, _, port = text[1:].partition("]")
        port = port.removeprefix(":")
    else:
        host, _, port = text.rpartition(":") if ":" in text else (text, "", "")
    if not host:
        raise ValueError(f"empty host in {safe_url(url)!r}")
    return host, _int(port, url) if port else default_port


def _int(text: str, url: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"expected a number, got {text!r} in {safe_url(url)!r}") from None


def _positive_float(text: str | None, url: str) -> float:
    if text is None:
        return _DEFAULT_REPLICA_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ValueError(f"replica_timeout must be a positive number of seconds in {safe_url(url)!r}")
    return value
