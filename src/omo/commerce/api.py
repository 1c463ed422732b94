"""/api/v1 stores, products and orders."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from omo.apikeys.service import Principal
from omo.commerce import service as commerce
from omo.commerce.schemas import (
    CODE,
    OrderIn,
    OrderResult,
    ProductRead,
    ProductUpsert,
    StoreRead,
    StoreUpsert,
)
from omo.http import AppSettings, PooledRoute, UoW, scoped
from omo.ingest import service as ingest

router = APIRouter(tags=["commerce"], route_class=PooledRoute)

StoreCode = Annotated[str, Path(pattern=CODE)]
Sku = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")]


@router.put("/stores/{code}", response_model=StoreRead, summary="Create or update a store")
def put_store(
    code: StoreCode,
    data: StoreUpsert,
    response: Response,
    uow: UoW,
    caller: Principal = scoped("catalog:write"),
) -> StoreRead:
    store, created = commerce.save_store(uow, code=code, data=data)
    response.status_code = 201 if created else 200
    return store


@router.get("/stores", response_model=list[StoreRead], summary="All stores")
def get_stores(uow: UoW, caller: Principal = scoped("members:read")) -> list[StoreRead]:
    return commerce.get_stores(uow)


@router.put("/products/{sku}", response_model=ProductRead, summary="Create or update a product")
def put_product(
    sku: Sku,
    data: ProductUpsert,
    response: Response,
    uow: UoW,
    caller: Principal = scoped("catalog:write"),
) -> ProductRead:
    product, created = commerce.save_product(uow, sku=sku, data=data)
    response.status_code = 201 if created else 200
    return product


@router.get("/products", response_model=list[ProductRead], summary="The catalogue, by SKU")
def get_products(
    uow: UoW,
    category: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    caller: Principal = scoped("members:read"),
) -> list[ProductRead]:
    return commerce.get_products(uow, category=category, limit=limit, offset=offset)


@router.post(
    "/orders",
    response_model=OrderResult,
    summary="Record an order (idempotent on channel + external_id)",
    responses={200: {"description": "a retry: the order recorded the first time"}},
)
def post_order(
    order: OrderIn,
    response: Response,
    uow: UoW,
    settings: AppSettings,
    caller: Principal = scoped("orders:write"),
) -> OrderResult:
    result = ingest.record_order(
        uow,
        order=order,
        principal=caller,
        currency=settings.currency,
        region=settings.default_region,
    )
    response.status_code = 200 if result.replayed else 201
    return result
