"""Tests for rat_engine.forms.parse_form: urlencoded, hand-built multipart bodies, bad input."""

from __future__ import annotations

import gc
import logging
import warnings
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rat_engine.exceptions import HTTPException
from rat_engine.forms import FormData
from rat_engine.forms import parse_form as _parse_form

BOUNDARY = "----rat-boundary-7MA4YWxkTrZu0gW"


def multipart(parts: list[tuple[str, bytes]], boundary: str = BOUNDARY) -> bytes:
    """Build a multipart/form-data body; each part is (raw header block, payload)."""
    out = b""
    for headers, payload in parts:
        out += b"--" + boundary.encode() + b"\r\n" + headers.encode("utf-8") + b"\r\n\r\n" + payload + b"\r\n"
    return out + b"--" + boundary.encode() + b"--\r\n"


def field(name: str, value: bytes) -> tuple[str, bytes]:
    return f'Content-Disposition: form-data; name="{name}"', value


def file_part(
    name: str, filename: str, payload: bytes, content_type: str | None = "text/plain"
) -> tuple[str, bytes]:
    headers = f'Content-Disposition: form-data; name="{name}"; filename="{filename}"'
    if content_type is not None:
        headers += f"\r\nContent-Type: {content_type}"
    return headers, payload


CT = f"multipart/form-data; boundary={BOUNDARY}"


_OPENED: list[FormData] = []


def parse_form(content_type: str, body: bytes) -> FormData:
    """parse_form, remembering the result so its uploads are closed after the test (an unclosed
    SpooledTemporaryFile warns on GC, an error under this project's filterwarnings)."""
    form = _parse_form(content_type, body)
    _OPENED.append(form)
    return form


def parse_or_status(content_type: str, body: bytes) -> FormData | int:
    """The form, or the status of the HTTPException it raised (any other exception escapes)."""
    try:
        return parse_form(content_type, body)
    except HTTPException as exc:
        return exc.status_code


@pytest.fixture(autouse=True)
def _quiet_multipart_logger_and_close_uploads() -> Iterator[None]:
    # python-multipart logs parse errors; keep the test output readable.
    logging.getLogger("python_multipart").setLevel(logging.CRITICAL)
    yield
    while _OPENED:
        for upload in _OPENED.pop().files.values():
            upload.file.close()


# ---------------------------------------------------------------------------------------------
# urlencoded and other content types
# ---------------------------------------------------------------------------------------------

URLENCODED = [
    pytest.param("application/x-www-form-urlencoded", b"a=1&b=2", {"a": "1", "b": "2"}, {}, id="simple"),
    pytest.param(
        "application/x-www-form-urlencoded; charset=utf-8",
        b"a=1&a=2&b=%E4%B8%AD&c=x+y",
        {"a": "2", "b": "中", "c": "x y"},
        {"a": ["1", "2"]},
        id="charset-param-repeated-utf8-plus",
    ),
    pytest.param("Application/X-WWW-Form-URLEncoded", b"a=1", {"a": "1"}, {}, id="case-insensitive-type"),
    pytest.param("application/x-www-form-urlencoded", b"", {}, {}, id="empty"),
    pytest.param("application/x-www-form-urlencoded", b"e&f=", {"e": "", "f": ""}, {}, id="blank"),
    pytest.param("application/x-www-form-urlencoded", b"d=%zz", {"d": "%zz"}, {}, id="bad-escape"),
    pytest.param(
        "application/x-www-form-urlencoded", b"\xff=\xfe", {"\ufffd": "\ufffd"}, {}, id="invalid-utf8"
    ),
    pytest.param("text/plain", b"a=1", {}, {}, id="other-type-empty-form"),
    pytest.param("", b"a=1", {}, {}, id="no-type-empty-form"),
    pytest.param("application/json", b'{"a":1}', {}, {}, id="json-empty-form"),
]


@pytest.mark.parametrize(("content_type", "body", "expected", "lists"), URLENCODED)
def test_parse_form_urlencoded(
    content_type: str, body: bytes, expected: dict[str, str], lists: dict[str, list[str]]
) -> None:
    form = parse_form(content_type, body)
    assert isinstance(form, FormData)
    assert dict(form.fields) == expected
    assert form.files == {}
    for key, values in lists.items():
        assert form.fields.getlist(key) == values


# ---------------------------------------------------------------------------------------------
# multipart
# ---------------------------------------------------------------------------------------------


def test_multipart_text_field_and_file() -> None:
    body = multipart(
        [
            field("title", "hello 中文".encode()),
            file_part("upload", "report.txt", b"line1\r\nline2\n--not-a-boundary\r\n"),
        ]
    )
    form = parse_form(CT, body)
    assert dict(form.fields) == {"title": "hello 中文"}
    assert set(form.files) == {"upload"}
    upload = form.files["upload"]
    assert upload.field_name == "upload"
    assert upload.filename == "report.txt"
    assert upload.content_type == "text/plain"
    assert upload.data == b"line1\r\nline2\n--not-a-boundary\r\n"
    assert upload.size == len(upload.data)
    assert upload.headers["content-type"] == "text/plain"
    assert "filename" in upload.headers["content-disposition"]


@pytest.mark.parametrize(
    ("content_type", "parts", "fields", "files"),
    [
        pytest.param(CT, [field("a", b"1")], {"a": "1"}, {}, id="one-field"),
        pytest.param(CT, [field("a", b"")], {"a": ""}, {}, id="empty-field"),
        pytest.param(CT, [field("a", b"1"), field("a", b"2")], {"a": "2"}, {}, id="repeated-field-last-wins"),
        pytest.param(CT, [field("a", b"x\r\ny")], {"a": "x\r\ny"}, {}, id="crlf-in-value"),
        pytest.param(CT, [field("a", b"\xff")], {"a": "\ufffd"}, {}, id="invalid-utf8-replaced"),
        pytest.param(CT, [field("名", "值".encode())], {"名": "值"}, {}, id="utf8-name"),
        pytest.param(
            CT,
            [file_part("f", "a.bin", b"\x00\x01\xff", content_type=None)],
            {},
            {"f": ("a.bin", "application/octet-stream", b"\x00\x01\xff")},
            id="file-without-content-type",
        ),
        pytest.param(
            CT,
            [file_part("f", "empty.txt", b"")],
            {},
            {"f": ("empty.txt", "text/plain", b"")},
            id="empty-file",
        ),
        pytest.param(
            CT,
            [file_part("f", "", b"x")],
            {},
            {"f": ("", "text/plain", b"x")},
            id="empty-filename-is-still-a-file",
        ),
        pytest.param(
            CT,
            [file_part("f", "1.txt", b"one"), file_part("g", "2.png", b"two", "image/png"), field("t", b"v")],
            {"t": "v"},
            {"f": ("1.txt", "text/plain", b"one"), "g": ("2.png", "image/png", b"two")},
            id="two-files-and-field",
        ),
        pytest.param(
            f'multipart/form-data; boundary="{BOUNDARY}"',
            [field("a", b"1")],
            {"a": "1"},
            {},
            id="quoted-boundary",
        ),
        pytest.param(
            f"Multipart/Form-Data; charset=utf-8; boundary={BOUNDARY}",
            [field("a", b"1")],
            {"a": "1"},
            {},
            id="case-and-extra-params",
        ),
    ],
)
def test_multipart_table(
    content_type: str,
    parts: list[tuple[str, bytes]],
    fields: dict[str, str],
    files: dict[str, tuple[str, str, bytes]],
) -> None:
    form = parse_form(content_type, multipart(parts))
    assert dict(form.fields) == fields
    assert {name: (f.filename, f.content_type, f.data) for name, f in form.files.items()} == files
    for upload in form.files.values():
        assert upload.size == len(upload.data)


def test_multipart_repeated_field_getlist() -> None:
    form = parse_form(CT, multipart([field("a", b"1"), field("b", b"x"), field("a", b"2")]))
    assert form.fields.getlist("a") == ["1", "2"]
    assert form.fields.getlist("b") == ["x"]


def test_multipart_large_file_spools(tmp_path) -> None:  # type: ignore[no-untyped-def]
    payload = bytes(range(256)) * 8192  # 2 MiB: above the 1 MiB spool limit
    form = parse_form(CT, multipart([file_part("big", "big.bin", payload, "application/octet-stream")]))
    upload = form.files["big"]
    try:
        assert upload.size == len(payload)
        assert upload.file._rolled  # type: ignore[attr-defined]  # really on disk, not in memory
        target = tmp_path / "out.bin"
        assert upload.save(str(target)) == len(payload)
        assert target.read_bytes() == payload
        assert upload.data == payload
    finally:
        upload.file.close()


@pytest.mark.parametrize(
    "content_type",
    [
        pytest.param("multipart/form-data", id="no-boundary"),
        pytest.param("multipart/form-data; boundary=", id="empty-boundary"),
        pytest.param('multipart/form-data; boundary=""', id="empty-quoted-boundary"),
        pytest.param("multipart/form-data; charset=utf-8", id="other-param-only"),
    ],
)
def test_multipart_without_boundary_is_400(content_type: str) -> None:
    with pytest.raises(HTTPException) as info:
        parse_form(content_type, multipart([field("a", b"1")]))
    assert info.value.status_code == 400


GARBAGE = [
    pytest.param(b"garbage", id="plain-garbage"),
    pytest.param(b"--" + BOUNDARY.encode() + b"\r\ngarbage\r\n\r\n", id="header-without-colon"),
    pytest.param(
        b"--" + BOUNDARY.encode() + b"\r\n\r\nno headers\r\n--" + BOUNDARY.encode() + b"--\r\n",
        id="no-headers",
    ),
    pytest.param(
        b"--" + BOUNDARY.encode() + b'\r\nContent-Disposition: form-data; name="a"\r\n\r\ntruncated',
        id="truncated",
    ),
    pytest.param(b"--" + BOUNDARY.encode() + b"--\r\n", id="only-closing-boundary"),
    pytest.param(b"", id="empty"),
    pytest.param(b"--wrong-boundary\r\n\r\nx\r\n--wrong-boundary--\r\n", id="other-boundary"),
    pytest.param(b"\x00" * 64, id="nuls"),
    pytest.param(
        b"--"
        + BOUNDARY.encode()
        + b"\r\nContent-Disposition: form-data\r\n\r\nx\r\n--"
        + BOUNDARY.encode()
        + b"--",
        id="part-without-name",
    ),
    pytest.param(multipart([field("a", b"1")]) + b"trailing junk", id="trailing-junk"),
    pytest.param(multipart([field("a", b"1")]).replace(b"\r\n", b"\n"), id="bare-lf-line-endings"),
]


@pytest.mark.parametrize("body", GARBAGE)
def test_multipart_garbage_is_400_or_empty(body: bytes) -> None:
    form = parse_or_status(CT, body)
    if isinstance(form, int):
        assert form == 400
        return
    assert isinstance(form, FormData)


_FUZZ_BODIES = st.one_of(
    st.binary(max_size=300),
    st.lists(
        st.sampled_from(
            [
                b"--" + BOUNDARY.encode(),
                b"--",
                b"\r\n",
                b"\n",
                b'Content-Disposition: form-data; name="a"',
                b'; filename="f.txt"',
                b"Content-Type: text/plain",
                b"x",
                b"\x00\xff",
                b":",
            ]
        ),
        max_size=20,
    ).map(b"".join),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_FUZZ_BODIES)
def test_multipart_fuzz_never_raises_other_exceptions(body: bytes) -> None:
    form = parse_or_status(CT, body)
    if isinstance(form, int):
        assert form == 400
        return
    assert isinstance(form, FormData)
    for upload in form.files.values():
        assert upload.size == len(upload.data)


def test_malformed_multipart_closes_temp_files() -> None:
    # Regression: a body rejected (400) after a file part was opened leaked that temp file.
    body = multipart([file_part("f", "a.txt", b"data")]).rsplit(b"--" + BOUNDARY.encode() + b"--", 1)[0]
    body += b"--" + BOUNDARY.encode() + b"\r\ngarbage\r\n\r\n"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(HTTPException) as info:
            _parse_form(CT, body)
        assert info.value.status_code == 400
        del info
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaks == []
