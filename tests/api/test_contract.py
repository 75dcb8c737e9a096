"""docs/openapi.yaml and the code say the same thing: every route the app serves is
documented and every documented route is served; every domain error's code and every
status of the error table appear in it; /openapi.json serves exactly that document."""

from __future__ import annotations

import json

from livehub.config import Settings
from livehub.core import errors as e
from livehub.http import create_app
from livehub.http.errors import STATUS

from .contract import HTTP_METHODS, document, documented_routes, served_routes


def _app():
    return create_app(Settings(database_url="postgresql://unused/unused", jwt_secret="s"))


def test_every_served_route_is_documented_and_back():
    served = served_routes(_app())
    documented = documented_routes(document())
    assert served - documented == set(), "served but not in docs/openapi.yaml"
    assert documented - served == set(), "in docs/openapi.yaml but not served"
    # the enumeration found the app's routes, not an empty map
    assert ("POST", "/comments/{video_id}") in served
    assert ("DELETE", "/videos/{video_id}/bans/{user_id}") in served
    assert ("GET", "/comments/{video_id}/ws") in served


def test_every_path_parameter_is_declared():
    for path, item in document()["paths"].items():
        names = {p.strip("{}") for p in path.split("/") if p.startswith("{")}
        shared = item.get("parameters", [])
        for method, op in item.items():
            if method not in HTTP_METHODS:
                continue
            declared = {
                _resolve(p)["name"]
                for p in shared + op.get("parameters", [])
                if _resolve(p)["in"] == "path"
            }
            assert declared == names, (method, path)


def _resolve(obj: dict) -> dict:
    ref = obj.get("$ref")
    if ref is None:
        return obj
    node = document()
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_every_error_code_and_status_is_documented():
    text = json.dumps(document())
    for cls in [e.LivehubError, *_subclasses(e.LivehubError)]:
        if cls is e.LivehubError or cls.__name__.startswith("_"):
            continue
        assert f"`{cls.code}`" in text, f"error code {cls.code!r} ({cls.__name__}) not documented"
    statuses = {
        code
        for item in document()["paths"].values()
        for method, op in item.items()
        if method in HTTP_METHODS
        for code in op["responses"]
    }
    for status in set(STATUS.values()):
        assert str(status) in statuses, status


def test_every_error_response_is_the_json_error_shape():
    for path, item in document()["paths"].items():
        for method, op in item.items():
            if method not in HTTP_METHODS:
                continue
            assert op.get("operationId"), (method, path)
            for status, response in op["responses"].items():
                if int(status) < 400:
                    continue
                content = _resolve(response)["content"]
                assert list(content) == ["application/json"], (method, path, status)
                schema = content["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)


async def test_openapi_json_is_the_yaml(client):
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == document()
    assert r.json()["openapi"].startswith("3.1")
