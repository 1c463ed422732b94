"""Marketplace and shop-platform export shapes of orders: Shopify's orders export and
Shopee's order report (docs/import.md), read into the same records as the omo shape."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import tzinfo
from decimal import Decimal
from typing import Any

from omo.transfer.formats import Row
from omo.transfer.shapes import (
    Record,
    RowError,
    ShapeError,
    money,
    omo_records,
    parse_datetime,
)

# --- Shopify orders export --------------------------------------------------------------------

SHOPIFY_REQUIRED = ("Name", "Created at", "Lineitem quantity", "Lineitem price")
SHOPIFY_COLUMNS = {
    "external_id": "Name", "ordered_at": "Created at", "status": "Financial Status",
    "currency": "Currency", "shipping_fee": "Shipping", "total": "Total",
    "discount_total": "Discount Amount", "lines.sku": "Lineitem sku",
    "lines.name": "Lineitem name", "lines.quantity": "Lineitem quantity",
    "lines.unit_price": "Lineitem price", "lines.discount": "Lineitem discount",
}  # fmt: skip


def shopify_records(
    rows: Iterable[tuple[int, Row]], tz: tzinfo
) -> tuple[list[Record], list[RowError]]:
    """Shopify writes one row per line item; the order's fields only on its first row."""
    records: dict[str, Record] = {}
    extra: dict[str, dict[str, Any]] = {}
    errors: list[RowError] = []
    checked = False
    for n, row in rows:
        if not checked:
            missing = [c for c in SHOPIFY_REQUIRED if c not in row]
            if missing:
                raise ShapeError(f"not a Shopify orders export: no column(s) {', '.join(missing)}")
            checked = True
        name = row.get("Name")
        if name is None:
            errors.append(RowError(n, "Name", "required: the order name (#1001)"))
            continue
        rec = records.get(name)
        if rec is None:
            status = "completed"
            if row.get("Cancelled at") or (row.get("Financial Status") or "").lower() == "voided":
                status = "cancelled"
            elif (row.get("Financial Status") or "").lower() in ("pending", "authorized"):
                status = "placed"
            customer, cols = [], []
            if row.get("Email"):
                customer.append({"kind": "email", "value": row["Email"]})
                cols.append("Email")
            for col in ("Phone", "Billing Phone", "Shipping Phone"):
                if row.get(col):
                    customer.append({"kind": "phone", "value": row[col]})
                    cols.append(col)
                    break
            data: dict[str, Any] = {
                "channel": "web", "external_id": name, "status": status,
                "ordered_at": parse_datetime(row.get("Created at"), tz),
                "currency": row.get("Currency") or "TWD", "customer": customer, "lines": [],
                "shipping_fee": row.get("Shipping") or "0",
            }  # fmt: skip
            rec = Record([n], data, columns=dict(SHOPIFY_COLUMNS), ident_columns=cols)
            records[name] = rec
            extra[name] = {
                "total": row.get("Total"),
                "discount": row.get("Discount Amount"),
                "taxes": row.get("Taxes"),
            }
        else:
            rec.rows.append(n)
        sku = row.get("Lineitem sku") or row.get("Lineitem name")
        rec.data["lines"].append({
            "sku": sku, "name": row.get("Lineitem name"),
            "quantity": row.get("Lineitem quantity"), "unit_price": row.get("Lineitem price"),
            "discount": row.get("Lineitem discount") or "0",
        })  # fmt: skip
        rec.line_rows.append(n)
    for name, rec in records.items():
        _settle_totals(rec, extra[name], errors, total_col="Total", discount_col="Discount Amount")
    return list(records.values()), errors


# --- Shopee order report ----------------------------------------------------------------------

SHOPEE_HEADERS: dict[str, tuple[str, ...]] = {
    "external_id": ("訂單編號", "Order ID"),
    "status": ("訂單狀態", "Order Status"),
    "buyer": ("買家帳號", "Username (Buyer)"),
    "ordered_at": ("訂單成立日期", "Order Creation Date"),
    "lines.name": ("商品名稱", "Product Name"),
    "lines.sku": ("商品選項貨號", "SKU Reference No."),
    "parent_sku": ("主商品貨號", "Parent SKU Reference No."),
    "lines.unit_price": ("商品活動價格", "Deal Price"),
    "original_price": ("商品原價", "Original Price"),
    "lines.quantity": ("數量", "Quantity"),
    "shipping_fee": ("買家支付運費", "Buyer Paid Shipping Fee"),
    "total": ("訂單總金額", "Grand Total"),
    "phone": ("收件者電話", "Phone Number"),
}
SHOPEE_REQUIRED = ("external_id", "ordered_at", "lines.quantity", "total")
SHOPEE_CANCELLED = ("已取消", "不成立", "cancelled", "canceled")
SHOPEE_OPEN = ("待付款", "待出貨", "運送中", "unpaid", "to ship", "shipping")


def shopee_records(
    rows: Iterable[tuple[int, Row]], tz: tzinfo
) -> tuple[list[Record], list[RowError]]:
    """One row per item; prices are what the buyer paid per item (活動價 / deal price)."""
    records: dict[str, Record] = {}
    extra: dict[str, dict[str, Any]] = {}
    errors: list[RowError] = []
    col: dict[str, str] = {}
    for n, row in rows:
        if not col:
            for key, names in SHOPEE_HEADERS.items():
                found = next((h for h in names if h in row), None)
                if found:
                    col[key] = found
            missing = [SHOPEE_HEADERS[k][0] for k in SHOPEE_REQUIRED if k not in col]
            if missing:
                raise ShapeError(f"not a Shopee order report: no column(s) {', '.join(missing)}")

        def get(key: str, row: Row = row) -> Any:
            return row.get(col[key]) if key in col else None

        oid = get("external_id")
        if oid is None:
            errors.append(RowError(n, col["external_id"], "required: the Shopee order id"))
            continue
        rec = records.get(oid)
        if rec is None:
            text = (get("status") or "").strip().lower()
            status = (
                "cancelled"
                if any(s in text for s in SHOPEE_CANCELLED)
                else ("placed" if any(s in text for s in SHOPEE_OPEN) else "completed")
            )
            customer, cols = [], []
            if get("buyer"):
                customer.append(
                    {"kind": "marketplace_buyer", "namespace": "shopee", "value": get("buyer")}
                )
                cols.append(col["buyer"])
            phone = get("phone")
            if phone and "*" not in str(phone):  # Shopee masks most buyers' phones
                customer.append({"kind": "phone", "value": phone})
                cols.append(col["phone"])
            data = {
                "channel": "shopee", "external_id": str(oid), "status": status,
                "ordered_at": parse_datetime(get("ordered_at"), tz), "customer": customer,
                "lines": [], "shipping_fee": get("shipping_fee") or "0",
            }  # fmt: skip
            columns = {k.removeprefix(""): v for k, v in col.items()}
            rec = Record([n], data, columns=columns, ident_columns=cols)
            records[oid] = rec
            extra[oid] = {"total": get("total"), "discount": None, "taxes": None}
        else:
            rec.rows.append(n)
        rec.data["lines"].append({
            "sku": get("lines.sku") or get("parent_sku") or get("lines.name"),
            "name": get("lines.name"), "quantity": get("lines.quantity"),
            "unit_price": get("lines.unit_price") or get("original_price"),
        })  # fmt: skip
        rec.line_rows.append(n)
    for oid, rec in records.items():
        _settle_totals(
            rec, extra[oid], errors, total_col=col.get("total", "total"), discount_col=None
        )
    return list(records.values()), errors


def _settle_totals(
    rec: Record,
    given: dict[str, Any],
    errors: list[RowError],
    *,
    total_col: str,
    discount_col: str | None,
) -> None:
    """Turn an export's order totals into our discount_total, or name the cell that is off.

    Our total = Σ(price × qty − line discount) − order discount + shipping. Exports state an
    order discount (Shopify) or only a grand total after vouchers and coins (Shopee, whose
    difference is then the order discount). Taxes an export adds on top are not revenue here.
    """
    lines = Decimal(0)
    for line in rec.data["lines"]:
        price, qty, disc = (
            money(line.get("unit_price")),
            line.get("quantity"),
            money(line.get("discount")) or Decimal(0),
        )
        try:
            lines += (price or Decimal(0)) * int(qty or 0) - disc
        except (TypeError, ValueError):
            return  # the schema names the bad cell
    shipping = money(rec.data.get("shipping_fee")) or Decimal(0)
    total = money(given.get("total"))
    stated = money(given.get("discount")) if discount_col else None
    if stated is not None:
        line_disc = sum(
            (money(li.get("discount")) or Decimal(0) for li in rec.data["lines"]), Decimal(0)
        )
        rec.data["discount_total"] = str(max(Decimal(0), stated - line_disc))
    elif total is not None and total < lines + shipping:
        rec.data["discount_total"] = str(lines + shipping - total)
    if total is None:
        return
    computed = lines - (money(rec.data.get("discount_total")) or Decimal(0)) + shipping
    taxes = money(given.get("taxes")) or Decimal(0)
    if total not in (computed, computed + taxes):
        errors.append(
            RowError(
                rec.rows[0],
                total_col,
                f"{total} does not equal the lines {lines} less discounts plus shipping "
                f"{shipping} (= {computed})",
            )
        )


def order_key_columns(shape: str, names: Sequence[str]) -> tuple[str, ...] | None:
    """The columns that name the order a row belongs to (its rows share their values), or None
    when the header has none."""
    if shape == "omo":
        return ("channel", "external_id")
    if shape == "shopify":
        return ("Name",)
    found = next((h for h in SHOPEE_HEADERS["external_id"] if h in names), None)
    return (found,) if found else None


def records_for(
    kind: str, shape: str, rows: Iterable[tuple[int, Row]], tz: tzinfo
) -> tuple[list[Record], list[RowError]]:
    if shape == "omo":
        return omo_records(kind, rows, tz)
    if kind != "orders":
        raise ShapeError(f"the {shape} shape holds orders, not {kind}")
    reader: Callable[..., tuple[list[Record], list[RowError]]] = (
        shopify_records if shape == "shopify" else shopee_records
    )
    return reader(rows, tz)
