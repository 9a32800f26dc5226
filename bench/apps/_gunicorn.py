"""Run a WSGI app on gunicorn from Python (so every bench app starts as ``python APP.py PORT``)."""

from _common import BACKLOG, HOST, port
from gunicorn.app.base import BaseApplication


class _App(BaseApplication):
    def __init__(self, app, options):
        self._app = app
        self._options = options
        super().__init__()

    def load_config(self):
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self):
        return self._app


def run(app, threads: int, **extra) -> None:
    options = {
        "bind": f"{HOST}:{port()}",
        "worker_class": "gthread",
        "workers": 1,
        "threads": threads,
        "backlog": BACKLOG,
        "accesslog": None,
        "loglevel": "warning",
        **extra,
    }
    _App(app, options).run()
