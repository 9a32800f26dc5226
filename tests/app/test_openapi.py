"""OpenAPI 3.2 (issue 16, part 3): the document validates with openapi-spec-validator's 3.2
validator; every schema in it is valid JSON Schema 2020-12; operations, parameters, bodies and
event-stream ``itemSchema``s say what the handlers do; and real responses (a JSON body, a 422,
SSE events) validate against the schemas the document gives for them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import OpenAPIV32SpecValidator, validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from support.openapi_app import build_app

from rat_engine import RatApp
from rat_engine.openapi import OPENAPI_VERSION, openapi_path
from rat_engine.testing import TestClient

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(build_app()) as c:
        yield c


@pytest.fixture(scope="module")
def document(client: TestClient) -> dict[str, Any]:
    r = client.get("/openapi.json")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    return r.json()  # type: ignore[no-any-return]


def test_the_document_is_valid_openapi_3_2(document: dict[str, Any]) -> None:
    assert document["openapi"] == OPENAPI_VERSION == "3.2.0"
    validate(document, cls=OpenAPIV32SpecValidator)  # raises on any violation
    assert not list(OpenAPIV32SpecValidator(document).iter_errors())


def _schemas(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("schema", "itemSchema", "contentSchema") or path.endswith("/schemas"):
                yield f"{path}/{key}", value
            yield from _schemas(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _schemas(value, f"{path}/{i}")


def test_every_schema_is_valid_json_schema_2020_12(document: dict[str, Any]) -> None:
    found = list(_schemas(document))
    assert len(found) > 30
    for where, schema in found:
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            pytest.fail(f"{where}: {exc.message}")


def test_every_route_is_documented_with_its_methods(document: dict[str, Any]) -> None:
    paths = document["paths"]
    assert set(paths) == {
        "/search",
        "/items/{item_id}",
        "/items/{item_id}/at/{ref}",
        "/points",
        "/tokens",
        "/orders",
        "/people",
        "/movies",
        "/trees",
        "/price",
        "/purge",
        "/legacy",
        "/",
        "/stream/tokens",
        "/stream/rooms/{room}",
        "/stream/lines",
        "/ndjson",
        "/download",
        "/news",
    }
    assert set(paths["/orders"]) == {"post", "put"}
    assert set(paths["/legacy"]) == {"get", "post"}  # @app.json's default methods
    assert paths["/purge"]["additionalOperations"]["PURGE"]["operationId"] == "purge_purge"
    ids = [op["operationId"] for item in paths.values() for op in item.values() if "operationId" in op]
    assert len(ids) == len(set(ids))
    search = paths["/search"]["get"]
    assert search["summary"] == "Search the catalogue."
    assert "arrive typed" in search["description"]
    assert "422" not in paths["/legacy"]["get"]["responses"]  # nothing to validate, no 422


PARAMETERS: list[tuple[str, str, list[dict[str, Any]]]] = [
    (
        "/search",
        "get",
        [
            {"name": "q", "in": "query", "required": False, "schema": {"type": "string", "default": ""}},
            {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer", "default": 10}},
            {
                "name": "tags",
                "in": "query",
                "required": False,
                "schema": {"type": "array", "items": {"type": "string"}, "default": []},
            },
        ],
    ),
    (
        "/items/{item_id}",
        "get",
        [
            {"name": "item_id", "in": "path", "required": True, "schema": {"type": "integer"}},
            {
                "name": "color",
                "in": "query",
                "required": False,
                "schema": {"$ref": "#/components/schemas/Color", "default": "red"},
            },
        ],
    ),
    (
        "/items/{item_id}/at/{ref}",
        "get",
        [
            {"name": "item_id", "in": "path", "required": True, "schema": {"type": "integer"}},
            {"name": "ref", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}},
            {
                "name": "when",
                "in": "query",
                "required": False,
                "schema": {
                    "anyOf": [{"type": "string", "format": "date"}, {"type": "null"}],
                    "default": None,
                },
            },
        ],
    ),
    (
        "/stream/rooms/{room}",
        "get",
        [
            {"name": "room", "in": "path", "required": True, "schema": {"type": "string"}},
            {"name": "since", "in": "query", "required": False, "schema": {"type": "integer", "default": 0}},
        ],
    ),
]


@pytest.mark.parametrize(("path", "method", "expected"), PARAMETERS, ids=[p for p, _, _ in PARAMETERS])
def test_parameters_come_from_rules_and_annotations(
    document: dict[str, Any], path: str, method: str, expected: list[dict[str, Any]]
) -> None:
    assert document["paths"][path][method]["parameters"] == expected


BODIES = [
    ("/points", {"type": "array", "items": {"$ref": "#/components/schemas/Point"}}),
    ("/tokens", {"$ref": "#/components/schemas/Token"}),
    ("/orders", {"$ref": "#/components/schemas/Order"}),
    ("/people", {"$ref": "#/components/schemas/Person"}),
    ("/movies", {"$ref": "#/components/schemas/Movie"}),
    ("/trees", {"$ref": "#/components/schemas/Tree"}),
]


@pytest.mark.parametrize(("path", "schema"), BODIES, ids=[p for p, _ in BODIES])
def test_request_bodies_come_from_annotations(
    document: dict[str, Any], path: str, schema: dict[str, Any]
) -> None:
    body = document["paths"][path]["post"]["requestBody"]
    assert body == {"required": True, "content": {"application/json": {"schema": schema}}}
    assert "422" in document["paths"][path]["post"]["responses"]


def test_components_describe_each_record_flavour(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["Point"]["required"] == ["x"]
    assert schemas["Point"]["properties"]["color"] == {"$ref": "#/components/schemas/Color"}
    assert schemas["Color"]["enum"] == ["red", "blue"]
    assert schemas["Movie"]["required"] == ["title"]  # NotRequired[int] year
    assert schemas["Person"]["required"] == ["name"]
    assert schemas["Tree"]["properties"]["children"]["items"] == {"$ref": "#/components/schemas/Tree"}
    assert schemas["Token"]["required"] == ["text", "index"]  # pydantic's own schema
    assert schemas["Order"]["required"] == ["item"]  # msgspec's own schema


def _sse_item(document: dict[str, Any], path: str) -> dict[str, Any]:
    content = document["paths"][path]["get"]["responses"]["200"]["content"]
    assert list(content) == ["text/event-stream"]
    return content["text/event-stream"]["itemSchema"]  # type: ignore[no-any-return]


def test_streams_have_an_event_stream_item_schema(document: dict[str, Any]) -> None:
    tokens = _sse_item(document, "/stream/tokens")
    assert tokens["required"] == ["data"]
    assert set(tokens["properties"]) == {"data", "event", "id", "retry"}
    assert tokens["properties"]["data"] == {
        "type": "string",
        "contentMediaType": "application/json",
        "contentSchema": {"$ref": "#/components/schemas/Token"},
    }
    room = _sse_item(document, "/stream/rooms/{room}")  # AsyncIterator[SSEEvent[Point]]
    assert room["properties"]["data"]["contentSchema"] == {"$ref": "#/components/schemas/Point"}
    assert _sse_item(document, "/stream/lines")["properties"]["data"] == {"type": "string"}
    news = _sse_item(document, "/news")["properties"]["data"]  # a subscription: no item type
    assert news == {"type": "string", "contentMediaType": "application/json"}
    ndjson = document["paths"]["/ndjson"]["get"]["responses"]["200"]["content"]
    assert ndjson == {"application/x-ndjson": {"itemSchema": {"$ref": "#/components/schemas/Order"}}}


def test_other_response_kinds(document: dict[str, Any]) -> None:
    def content(path: str) -> dict[str, Any]:
        return document["paths"][path]["get"]["responses"]["200"]["content"]  # type: ignore[no-any-return]

    assert content("/") == {"text/html": {"schema": {"type": "string"}}}
    assert content("/download") == {"application/octet-stream": {}}
    assert content("/items/{item_id}") == {
        "application/json": {"schema": {"$ref": "#/components/schemas/Point"}}
    }


# -- real responses validate against the document's schemas ---------------------------------


def _validator(document: dict[str, Any], schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    """A validator for ``schema`` whose ``#/components/...`` references resolve in ``document``."""
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource("urn:doc", resource)
    rewritten = json.loads(json.dumps(schema).replace('"#/components/', '"urn:doc#/components/'))
    return jsonschema.Draft202012Validator(rewritten, registry=registry)


def test_responses_match_their_schemas(client: TestClient, document: dict[str, Any]) -> None:
    item_schema = document["paths"]["/items/{item_id}"]["get"]["responses"]["200"]["content"][
        "application/json"
    ]
    r = client.get("/items/42?color=blue")
    assert r.json() == {"x": 42, "y": 0, "color": "blue"}
    _validator(document, item_schema["schema"]).validate(r.json())

    error_schema = document["paths"]["/search"]["get"]["responses"]["422"]["content"]["application/json"][
        "schema"
    ]
    r = client.get("/search?limit=lots")
    assert r.status_code == 422
    _validator(document, error_schema).validate(r.json())

    token = _sse_item(document, "/stream/tokens")
    event_validator = _validator(document, token)
    data_validator = _validator(document, token["properties"]["data"]["contentSchema"])
    with client.sse("/stream/tokens?n=2") as events:
        for _ in range(2):
            event = events.next_event(timeout=5)
            event_validator.validate({"data": event.data, "event": event.event})
            data_validator.validate(event.json())


def test_the_document_follows_routes_added_later_and_hides_its_own() -> None:
    app = RatApp()
    spec = app.enable_openapi("/api/openapi.json", "/api/docs", title="Late", version="9")
    with TestClient(app) as client:
        first = client.get("/api/openapi.json").json()
        assert first["paths"] == {} and first["info"] == {"title": "Late", "version": "9"}

        @app.json("/added")
        def added(request_data: Any, n: int = 1) -> dict[str, int]:
            return {"n": n}

        assert set(client.get("/api/openapi.json").json()["paths"]) == {"/added"}
        assert client.get("/api/docs").status_code == 200
        assert client.get("/api/docs/assets/swagger-ui.css").status_code == 200
        assert client.get("/api/docs/assets/index.css").status_code == 404  # only the page's files
    assert spec.document()["paths"]["/added"]["get"]["parameters"][0]["name"] == "n"


def test_docs_page_without_assets_says_how_to_get_them(tmp_path: Path) -> None:
    app = RatApp()
    app.enable_openapi(docs_assets=tmp_path)  # an empty folder: no Swagger UI there
    with TestClient(app) as client:
        r = client.get("/docs")
        assert r.status_code == 503
        assert "rat_engine[openapi]" in r.text
        assert client.get("/openapi.json").status_code == 200


def test_no_docs_page_when_asked() -> None:
    app = RatApp()
    app.enable_openapi(docs=None)
    with TestClient(app) as client:
        assert client.get("/docs").status_code == 404


@pytest.mark.parametrize(
    ("rule", "path"),
    [
        ("/", "/"),
        ("/a/<b>", "/a/{b}"),
        ("/u/<int:id>/f/<path:p>", "/u/{id}/f/{p}"),
        ("/x/<uuid:u>", "/x/{u}"),
    ],
)
def test_rules_become_path_templates(rule: str, path: str) -> None:
    assert openapi_path(rule) == path
