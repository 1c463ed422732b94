"""PooledRoute: a plain `def` endpoint still runs off the event loop, its response model still
validates, and the API's schema does not change."""

from __future__ import annotations

import threading
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, FastAPI, Query
from fastapi.exceptions import ResponseValidationError
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel

from omo.http import PooledRoute


class Out(BaseModel):
    n: int
    thread: str


def app_with(route_class: Any) -> FastAPI:
    router = APIRouter(route_class=route_class)

    @router.get("/things/{n}", response_model=Out, summary="a thing")
    def thing(n: int, scale: Annotated[int, Query(ge=1)] = 1) -> Any:
        if n == 13:
            return {"n": "not a number", "thread": "x"}  # the response model refuses it
        return {"n": n * scale, "thread": threading.current_thread().name}

    app = FastAPI()
    app.include_router(router)
    return app


def test_the_endpoint_runs_in_the_pool_and_its_response_is_validated() -> None:
    with TestClient(app_with(PooledRoute)) as client:
        loop_thread = client.portal.call(lambda: threading.current_thread().name)  # type: ignore[union-attr]
        answer = client.get("/things/4", params={"scale": 3}).json()
        assert answer["n"] == 12 and answer["thread"] != loop_thread
        assert client.get("/things/4", params={"scale": 0}).status_code == 422
        with pytest.raises(ResponseValidationError):
            client.get("/things/13")


def test_the_schema_is_the_same_as_fastapis_own() -> None:
    assert app_with(PooledRoute).openapi() == app_with(APIRoute).openapi()
