"""GET /openapi.json: the API contract, ``docs/openapi.yaml`` served as JSON.

The YAML is the one source (``livehub/http/openapi.yaml`` links to it, so it ships
inside the package); it is parsed and encoded once, when the app is created, so a
broken document stops the server at start instead of failing a request later.
``tests/api`` keeps it and the routes together and fuzzes the server against it.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import yaml
from quart import Blueprint, Response

DOCUMENT = Path(__file__).resolve().parent / "openapi.yaml"

bp = Blueprint("contract", __name__)


@cache
def document() -> dict:
    """The OpenAPI document as a dict (parsed once)."""
    with open(DOCUMENT, encoding="utf-8") as f:
        return yaml.safe_load(f)


@cache
def document_json() -> bytes:
    return json.dumps(document(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def load() -> None:
    """Parse and encode the document now (at app creation)."""
    document_json()


@bp.get("/openapi.json")
async def openapi() -> Response:
    return Response(document_json(), content_type="application/json")
