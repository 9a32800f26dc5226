"""Settings: ``Limits``, ``StreamSettings``, ``BroadcastSettings`` as the primary form, RAT
Engine's flat keywords as aliases, typos caught, everything validated at registration."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from rat_engine import BroadcastSettings, Limits, RatApp, StreamSettings
from rat_engine.testing import TestClient


def test_flat_keywords_map_into_the_settings_objects() -> None:
    app = RatApp(
        sse_ping_interval=5,
        sse_retry=1000,
        shutdown_retry=None,
        max_streams=7,
        max_body_size=10,
        broadcast_policy="coalesce",
        broadcast_history=5,
    )
    assert (app.stream_settings.ping_interval, app.stream_settings.retry) == (5, 1000)
    assert app.stream_settings.shutdown_retry is None
    assert (app.limits.max_streams, app.limits.max_body_size) == (7, 10)
    assert (app.broadcast_settings.policy, app.broadcast_settings.history) == ("coalesce", 5)
    assert app.connections.limits is app.limits  # one object: a change applies at the next admission
    assert app.config == {}


def test_settings_objects_are_the_primary_form_and_flat_keywords_override_them() -> None:
    limits = Limits(max_streams=3, max_url_length=100)
    app = RatApp(limits=limits, stream_settings=StreamSettings(ping_interval=2), max_streams=4)
    assert (app.limits.max_streams, app.limits.max_url_length) == (4, 100)
    assert limits.max_streams == 3  # the caller's object is not changed (apps never share one)
    assert app.stream_settings.ping_interval == 2
    assert RatApp(broadcast_settings=BroadcastSettings(url="memory://")).broadcast_url == "memory://"


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("sse_ping_intervall", "sse_ping_interval"),
        ("max_stream", "max_streams"),
        ("broadcast_polcy", "broadcast_policy"),
        ("debg", "debug"),
        ("stream_setting", "stream_settings"),
    ],
)
def test_a_near_miss_of_a_known_option_is_a_type_error(typo: str, meant: str) -> None:
    with pytest.raises(TypeError, match=f"{typo!r}: did you mean {meant!r}"):
        RatApp(**{typo: 5})


def test_other_unknown_keywords_go_to_config_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "rat_engine"):
        app = RatApp(secret_key="s3cret", config={"theme": "dark"})
    assert app.config == {"theme": "dark", "secret_key": "s3cret"}
    [record] = [r for r in caplog.records if "app.config" in r.getMessage()]
    assert "'secret_key' is not a rat_engine option" in record.getMessage()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: StreamSettings(ping_interval=-1), "ping_interval"),
        (lambda: StreamSettings(buffer_size=0), "buffer_size"),
        (lambda: StreamSettings(retry=-5), "retry"),
        (lambda: StreamSettings(send_timeout="soon"), "send_timeout"),  # type: ignore[arg-type]
        (lambda: BroadcastSettings(policy="drop_newest"), "policy"),
        (lambda: RatApp(broadcast_policy="drop_newest"), "policy"),
        (lambda: RatApp(sse_buffer_size=0), "buffer_size"),
    ],
)
def test_values_out_of_range_are_refused_at_once(make: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_route_stream_options_are_checked_and_resolved_at_registration() -> None:
    app = RatApp(sse_ping_interval=15, sse_send_timeout=30)

    @app.sse("/fast", ping_interval=1)
    def fast(request_data: Any) -> Iterator[str]:
        yield "x"

    match = app.router.match("GET", "/fast")
    settings = match.endpoint.stream_settings  # type: ignore[union-attr]
    assert settings is not None
    assert (settings.ping_interval, settings.send_timeout) == (1, 30)
    with pytest.raises(TypeError, match="ping_intervall"):
        app.sse("/typo", ping_intervall=1)(fast)
    with pytest.raises(TypeError, match="for a 'json' route"):
        app.json("/j", ping_interval=1)(fast)
    with pytest.raises(ValueError, match="ping_interval"):
        app.sse("/negative", ping_interval=-1)(fast)


def test_an_unknown_route_kind_is_refused() -> None:
    app = RatApp()
    with pytest.raises(ValueError, match="unknown route kind 'sse_jsn'"):
        app.route("/x", kind="sse_jsn")(lambda: "x")  # type: ignore[arg-type]


def test_limits_changed_after_registration_apply_to_the_next_request() -> None:
    app = RatApp()

    @app.html("/")
    def index() -> str:
        return "ok"

    with TestClient(app) as client:
        assert client.get("/?q=" + "a" * 200).status_code == 200
        app.limits.max_url_length = 100
        assert client.get("/?q=" + "a" * 200).status_code == 414


def test_debug_is_one_fact_for_responses_and_streams() -> None:
    app = RatApp()

    @app.sse("/boom")
    def boom(request_data: Any) -> Iterator[str]:
        raise RuntimeError("detail")
        yield ""  # pragma: no cover

    @app.json("/fail")
    def fail() -> Any:
        raise RuntimeError("detail")

    with TestClient(app) as client:
        assert "detail" not in client.get("/boom").text
        app.debug = True  # set after registration (as app.run(debug=True) does): applies everywhere
        assert "RuntimeError: detail" in client.get("/boom").text
        assert "RuntimeError: detail" in client.get("/fail").text
