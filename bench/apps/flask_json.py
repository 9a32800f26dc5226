"""Flask /json on gunicorn gthread (1 worker, 8 threads), no access log."""

from _common import PAYLOAD
from _gunicorn import run
from flask import Flask

app = Flask(__name__)


@app.get("/json")
def j():
    return dict(PAYLOAD)


if __name__ == "__main__":
    run(app, threads=8)
