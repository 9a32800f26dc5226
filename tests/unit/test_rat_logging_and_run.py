"""RAT Engine code that configures logging, logs with rat_* and runs the app with RAT's keywords,
written as a RAT Engine user writes it (their import lines, their call shapes)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rat_engine import (
    RatApp,
    rat_debug,
    rat_emergency,
    rat_error,
    rat_flush_logs,
    rat_info,
    rat_startup_log,
    rat_trace,
    rat_warn,
)


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    names = [
        "rat_engine",
        "rat_engine.access",
        "rat_engine.dispatch",
        "rat_engine.streaming",
        "rat_engine.server",
    ]
    saved = {n: (logging.getLogger(n).level, logging.getLogger(n).disabled) for n in names}
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)
    for name, (lvl, disabled) in saved.items():
        logging.getLogger(name).setLevel(lvl)
        logging.getLogger(name).disabled = disabled


def test_configure_logging_levels_file_and_access_switch(tmp_path: Path) -> None:
    app = RatApp(name="logging_demo")
    out = io.StringIO()
    log_file = tmp_path / "app.log"
    app.configure_logging(
        level="debug",
        enable_access_log=False,
        enable_error_log=True,
        enable_colors=False,
        enable_emoji=True,
        show_timestamp=False,
        show_module=True,
        log_file=str(log_file),
        stream=out,
    )
    rat_debug("debug %s", "line")
    rat_trace("below the level")  # trace < debug: not written
    rat_info("info line")
    rat_warn("warn line")
    rat_error("error line")
    rat_emergency("emergency line")
    rat_startup_log("server starting")
    rat_flush_logs()
    text = out.getvalue()
    assert "DEBUG   rat_engine.app: debug line" in text
    assert "below the level" not in text
    for line in ("INFO    rat_engine.app: info line", "WARNING rat_engine.app: warn line", "ERROR   rat_engine.app: error line",
                 "CRITICAL rat_engine.app: emergency line", "rat_engine.app: server starting"):  # fmt: skip
        assert line in text
    assert "\x1b[" not in text  # no colours when asked for none
    assert log_file.read_text(encoding="utf-8").count("rat_engine.app") == 6
    assert logging.getLogger("rat_engine.access").disabled
    assert app._log_level == "debug" and app._access_log is False


def test_colours_only_on_a_terminal_by_default() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty, pipe = Tty(), io.StringIO()
    RatApp().configure_logging(level="info", stream=tty)
    rat_info("coloured")
    RatApp().configure_logging(level="info", stream=pipe)  # replaces the first handler
    rat_info("plain")
    assert "\x1b[32m" in tty.getvalue() and "plain" not in tty.getvalue()
    assert "\x1b[" not in pipe.getvalue() and "plain" in pipe.getvalue()


def test_an_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown log level 'loud'"):
        RatApp().configure_logging(level="loud")


def test_run_accepts_rat_keywords_and_stop_stops_it(caplog: pytest.LogCaptureFixture) -> None:
    app = RatApp(name="run_demo")

    @app.json("/hello")
    def hello(request_data):  # type: ignore[no-untyped-def]
        return {"hello": "world"}

    with caplog.at_level(logging.WARNING, "rat_engine"):
        handle = app.run(
            host="127.0.0.1",
            port=0,
            blocking=False,
            debug=False,
            shutdown_timeout=3,
            metrics=True,
            enable_access_log=False,
            enable_error_log=True,
            max_connections=100,  # a RAT Engine keyword with no counterpart here
            log_level="warning",
        )
    try:
        assert app.shutdown_grace == 3
        assert httpx.get(handle.url + "/hello", timeout=5).json() == {"hello": "world"}
        assert "rat_requests_total" in httpx.get(handle.url + "/metrics", timeout=5).text
        assert any("'max_connections' not supported here; ignored" in r.getMessage() for r in caplog.records)
    finally:
        app.stop()
    assert not handle.running
    app.stop()  # twice is fine
