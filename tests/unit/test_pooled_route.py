"""PooledRoute: a plain `def` endpoint still runs off the event loop, its response model is
validated on the loop (not in the thread pool a second time), and the schema does not change."""

from __future__ import annotations

import threading
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, FastAPI, Query
from fastapi.exceptions import ResponseValidationError
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel, field_validator

from omo.http import PooledRoute

VALIDATED_IN: list[str] = []


class Out(BaseModel):
    n: int
    thread: str

    @field_validator("n")
    @classmethod
    def _where(cls, n: int) -> int:
        VALIDATED_IN.append(threading.current_thread().name)
        return n


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


def threads(route_class: Any) -> tuple[str, str, str]:
    """(the event loop's thread, the endpoint's, the response validation's)"""
    VALIDATED_IN.clear()
    with TestClient(app_with(route_class)) as client:
        assert client.portal is not None
        loop = client.portal.call(lambda: threading.current_thread().name)
        answer = client.get("/things/4", params={"scale": 3}).json()
    assert answer["n"] == 12
    return loop, answer["thread"], VALIDATED_IN[-1]


def test_the_endpoint_runs_in_the_pool_and_its_response_is_validated_on_the_loop() -> None:

    loop, endpoint, validation = threads(PooledRoute)
    assert endpoint != loop and validation == loop
    # FastAPI's own route validates in the pool: the second hand-off this class saves
    loop, endpoint, validation = threads(APIRoute)
    assert endpoint != loop and validation != loop
    with TestClient(app_with(PooledRoute)) as client:
        assert client.get("/things/4", params={"scale": 0}).status_code == 422
        with pytest.raises(ResponseValidationError):
            client.get("/things/13")


def test_the_schema_is_the_same_as_fastapis_own() -> None:

    assert app_with(PooledRoute).openapi() == app_with(APIRoute).openapi()
