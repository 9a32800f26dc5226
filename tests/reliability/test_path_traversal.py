"""Scenario 7 -- path traversal: ``app.static("/static", root)`` and ``@app.file`` routes built on
``safe_join`` must never serve a file outside ``root``: ``..``, ``%2e%2e``, ``%2f``, absolute paths,
backslashes, NUL, double encoding and symlinks pointing out of the root all get 404/400 and never
the file's content, while files inside (and symlinks that stay inside) are still served.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.http import get
from support.live import run_live

from rat_engine import HTTPException, RatApp, safe_join

from ._support import pick, report

SECRET = f"TOP-SECRET-{uuid.uuid4().hex}"
SECRET2 = f"OUTSIDE-DIR-{uuid.uuid4().hex}"
INSIDE = f"inside-content-{uuid.uuid4().hex}"
NESTED = f"nested-content-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("traversal")
    (base / "secret.txt").write_text(SECRET)
    (base / "outside").mkdir()
    (base / "outside" / "secret2.txt").write_text(SECRET2)
    root = base / "root"
    (root / "sub").mkdir(parents=True)
    (root / "inside.txt").write_text(INSIDE)
    (root / "sub" / "nested.txt").write_text(NESTED)
    os.symlink(base / "secret.txt", root / "link_out")
    os.symlink("../secret.txt", root / "rel_link_out")
    os.symlink(base / "outside", root / "dirlink_out")
    os.symlink("/etc/passwd", root / "passwd_link")
    os.symlink(root / "inside.txt", root / "link_in")
    os.symlink("sub", root / "dirlink_in")
    return root


@pytest.fixture(scope="module")
def server(tree: Path) -> Iterator[Any]:
    app = RatApp(name="traversal")
    app.static("/static", tree)

    @app.file("/dl/<path:name>")
    def download(name: str) -> Any:
        return safe_join(tree, name)

    @app.file("/q")
    def by_query(request_data: dict[str, Any]) -> Any:
        return safe_join(tree, request_data["query_params"].get("f", ""))

    with run_live(app) as handle:
        yield handle


# Request targets sent byte for byte (no client-side normalisation).
ATTACKS = [
    "/../secret.txt",
    "/../../secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E/secret.txt",
    "/.%2e/secret.txt",
    "/%2e%2e%2fsecret.txt",
    "/..%2fsecret.txt",
    "/..%2Fsecret.txt",
    "/sub/../../secret.txt",
    "/sub/%2e%2e/%2e%2e/secret.txt",
    "/sub/..%2f..%2fsecret.txt",
    "/..%5csecret.txt",
    "/%5c..%5csecret.txt",
    "/..\\secret.txt",
    "/sub\\..\\..\\secret.txt",
    "//etc/passwd",
    "/%2fetc%2fpasswd",
    "/%2Fetc/passwd",
    "/etc/passwd",
    "/" + "../" * 12 + "etc/passwd",
    "/" + "%2e%2e/" * 12 + "etc/passwd",
    "/..%00/secret.txt",
    "/inside.txt%00.png",
    "/%00",
    "/%00../secret.txt",
    "/link_out",
    "/rel_link_out",
    "/passwd_link",
    "/dirlink_out/secret2.txt",
    "/dirlink_out/../secret.txt",
    "/%252e%252e/secret.txt",
    "/%252e%252e%252fsecret.txt",
    "/..;/secret.txt",
    "/....//secret.txt",
    "/.../secret.txt",
    "/%c0%ae%c0%ae/secret.txt",
    "/%c0%af..%c0%afsecret.txt",
    "/%e0%80%ae%e0%80%ae/secret.txt",
    "/dirlink_in/../../secret.txt",
    "/%2e%2e",
    "/..",
    "/.",
]
QUERY_ATTACKS = [
    "../secret.txt",
    "%2e%2e/secret.txt",
    "..%2fsecret.txt",
    "/etc/passwd",
    "%2fetc%2fpasswd",
    "..\\secret.txt",
    "%5c..%5csecret.txt",
    "%00",
    "inside.txt%00",
    "link_out",
    "dirlink_out/secret2.txt",
    "sub/../../secret.txt",
    "....//secret.txt",
    "%252e%252e/secret.txt",
    "passwd_link",
    "/" + "../" * 12 + "etc/passwd",
    "",
]
ALLOWED = [
    ("/static/inside.txt", INSIDE),
    ("/static/sub/nested.txt", NESTED),
    ("/static/link_in", INSIDE),
    ("/static/dirlink_in/nested.txt", NESTED),
    ("/static/sub/../inside.txt", INSIDE),
    ("/static/%69nside.txt", INSIDE),
    ("/dl/inside.txt", INSIDE),
    ("/dl/sub/nested.txt", NESTED),
    ("/q?f=inside.txt", INSIDE),
    ("/q?f=sub%2fnested.txt", NESTED),
    ("/q?f=/inside.txt", INSIDE),
]
SECRETS = (SECRET, SECRET2, "root:x:0:0")


def _leaks(body: bytes) -> bool:
    return any(s.encode() in body for s in SECRETS)


def test_traversal_attempts_never_leave_the_root(server: Any) -> None:
    statuses: Counter[int | None] = Counter()
    failures: list[tuple[str, str, int | None]] = []
    targets = [p + a for p in ("/static", "/dl") for a in ATTACKS] + [f"/q?f={a}" for a in QUERY_ATTACKS]
    checked = 0
    for target in targets:
        for method, headers in (("GET", {}), ("HEAD", {}), ("GET", {"Range": "bytes=0-10"})):
            response = get(server.port, target, headers=headers, method=method)
            checked += 1
            statuses[response.status] += 1
            if response.status not in (400, 404) or _leaks(response.head + response.body):
                failures.append((method, target, response.status))
    served = 0
    for target, content in ALLOWED:
        response = get(server.port, target)
        if response.status == 200 and response.body == content.encode():
            served += 1
        else:
            failures.append(("GET allowed", target, response.status))
    report(
        "path_traversal",
        f"{checked} traversal requests ({len(targets)} targets x GET/HEAD/Range over app.static, a "
        f"<path:> @app.file route and a query-parameter route): statuses {dict(statuses)}, 0 leaked; "
        f"{served}/{len(ALLOWED)} legitimate files (incl. in-root symlinks) served",
        requests=checked,
        targets=len(targets),
        statuses={str(k): v for k, v in statuses.items()},
        legitimate_served=served,
        legitimate_total=len(ALLOWED),
        failures=failures,
    )
    assert not failures, failures


SEGMENTS = st.sampled_from(
    [
        "..",
        ".",
        "",
        "inside.txt",
        "sub",
        "nested.txt",
        "link_out",
        "rel_link_out",
        "dirlink_out",
        "dirlink_in",
        "link_in",
        "secret.txt",
        "secret2.txt",
        "etc",
        "passwd",
        "\\",
        "..\\..",
        "\0",
        "~",
        "%2e%2e",
        "/",
        "//",
    ]
)


def test_safe_join_property(tree: Path) -> None:
    outcomes: Counter[str] = Counter()
    root = tree.resolve()

    @settings(
        max_examples=pick(1_000, 20_000),
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(st.lists(SEGMENTS, max_size=8).map("/".join), st.booleans())
    def check(relative: str, absolute: bool) -> None:
        if absolute:
            relative = "/" + relative
        try:
            result = safe_join(tree, relative)
        except HTTPException as exc:
            assert exc.status_code == 404
            outcomes["refused (404)"] += 1
            return
        resolved = Path(result).resolve()
        assert resolved == root or root in resolved.parents, (relative, resolved)
        if resolved.is_file():
            assert resolved.read_text() in (INSIDE, NESTED), (relative, resolved)
            outcomes["inside file"] += 1
        else:
            outcomes["inside, not a file"] += 1

    check()
    report(
        "safe_join_fuzz",
        f"{sum(outcomes.values())} random relative paths through safe_join: {dict(outcomes)}; none outside the root",
        outcomes=dict(outcomes),
    )
