"""Broadcast URLs for one Redis, Redis Sentinel and Redis Cluster, and the durability setting
(no Redis server needed: nothing connects until the app starts)."""

from __future__ import annotations

import pytest

from rat_engine import RatApp
from rat_engine.broadcast.redis_config import is_redis_url, parse_target, safe_url
from rat_engine.settings import BroadcastSettings


def test_sentinel_url_with_password_service_db_and_durability() -> None:
    target = parse_target(
        "redis+sentinel://app:p%40ss@10.0.0.1:26379,10.0.0.2,[::1]:26380/mymaster/3"
        "?durability=replicated&replica_timeout=0.25&sentinel_password=sp"
    )
    assert target.kind == "sentinel"
    assert target.hosts == (("10.0.0.1", 26379), ("10.0.0.2", 26379), ("::1", 26380))
    assert (target.service, target.db) == ("mymaster", 3)
    assert (target.username, target.password) == ("app", "p@ss")
    assert target.sentinel_password == "sp" and target.sentinel_username is None
    assert target.replicated and target.replica_timeout == 0.25
    assert target.connection_options() == {"username": "app", "password": "p@ss"}
    assert target.sentinel_options() == {"password": "sp"}
    assert not target.tls


def test_rediss_sentinel_is_tls_to_redis_and_to_the_sentinels() -> None:
    target = parse_target("rediss+sentinel://:pw@h:26379/svc?ssl_cert_reqs=none")
    assert target.tls and target.db == 0 and target.password == "pw" and target.username is None
    assert target.connection_options() == {"password": "pw", "ssl": True, "ssl_cert_reqs": "none"}
    assert target.sentinel_options() == {"ssl": True, "ssl_cert_reqs": "none"}


def test_cluster_url() -> None:
    target = parse_target("redis+cluster://h1:7000,h2:7001/")
    assert target.kind == "cluster" and target.hosts == (("h1", 7000), ("h2", 7001))
    assert parse_target("redis+cluster://h1/0").hosts == (("h1", 6379),)
    assert not target.replicated


def test_single_url_keeps_its_own_query_and_loses_ours() -> None:
    target = parse_target("redis://:pw@h:6379/2?durability=replicated&socket_timeout=5")
    assert target.kind == "single" and target.replicated
    assert target.redis_url == "redis://:pw@h:6379/2?socket_timeout=5"
    untouched = "unix:///run/redis.sock?db=1"
    assert parse_target(untouched).redis_url == untouched
    assert parse_target("valkey://h:6379/0").redis_url == "redis://h:6379/0"


def test_the_url_wins_over_the_setting() -> None:
    assert parse_target("redis://h/0", "replicated").replicated
    assert not parse_target("redis://h/0?durability=none", "replicated").replicated
    assert parse_target("redis://h/0?durability=replicated", "none").replicated


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+sentinel://h:26379/", "service_name"),
        ("redis+sentinel://h:26379/svc/x", "expected a number"),
        ("redis+sentinel:///svc", "no sentinel host"),
        ("redis+cluster://h:7000/1", "only database 0"),
        ("redis+cluster://h:7000/?socket_timeout=1", "unknown option"),
        ("redis://h/0?durability=always", "unknown broadcast durability"),
        ("redis://h/0?replica_timeout=0", "replica_timeout"),
        ("redis+sentinel://:hunter2@h:x/svc", "expected a number"),
    ],
)
def test_malformed_urls_are_refused_without_their_secrets(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        parse_target(url)
    assert "hunter2" not in str(caught.value)


def test_url_forms_and_safe_urls() -> None:
    for url in (
        "redis://h",
        "rediss://h",
        "unix:///s",
        "valkey://h",
        "redis+sentinel://h/s",
        "rediss+cluster://h",
    ):
        assert is_redis_url(url), url
    for url in ("memory://", "redis+proxy://h", "http://h"):
        assert not is_redis_url(url), url
    assert (
        safe_url("redis+sentinel://u:pw@h1,h2/s?sentinel_password=spw&durability=replicated")
        == "redis+sentinel://***@h1,h2/s?sentinel_password=***&durability=replicated"
    )


def test_durability_setting() -> None:
    pytest.importorskip("redis")
    app = RatApp(broadcast_url="redis+sentinel://127.0.0.1:1/svc", broadcast_durability="replicated")
    assert app.broadcast_settings.durability == "replicated"
    assert app.broadcast.stats()["durability"] == "replicated"
    assert app.broadcast.stats()["topology"] == "sentinel"
    with pytest.raises(ValueError, match="durability"):
        BroadcastSettings(durability="quorum")
    with pytest.raises(ValueError, match="needs a Redis backend"):
        _ = RatApp(broadcast_url="memory://", broadcast_durability="replicated").broadcast
