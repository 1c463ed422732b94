"""Reading the product figures of the last refresh: the basket rules (what sells with what),
"bought X → recommend Y" for one member from the SKUs they have bought, and how far new
products have reached."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from omo.analytics.basket import LEVELS
from omo.analytics.models import BasketRule, NewProduct
from omo.analytics.schemas import BasketRuleRead, NewProductRead, Recommendation
from omo.commerce import service as commerce
from omo.db import UnitOfWork
from omo.members import service as members
from omo.shared.errors import ValidationFailed

_BATCH = 500  # antecedents per IN list


def basket_rules(
    uow: UnitOfWork,
    *,
    level: str,
    item: str | None,
    min_lift: float,
    limit: int,
    antecedent_items: int | None = None,
) -> list[BasketRuleRead]:
    """Rules of a level, strongest lift first; only those with `item` among their antecedents,
    and only those with one or two antecedent items, when asked."""
    if level not in LEVELS:
        raise ValidationFailed(f"level must be one of {', '.join(LEVELS)}", field="query.level")
    if antecedent_items not in (None, 1, 2):
        raise ValidationFailed("antecedent_items must be 1 or 2", field="query.antecedent_items")
    query = select(BasketRule).where(BasketRule.level == level, BasketRule.lift >= min_lift)
    if item is not None:
        query = query.where(or_(BasketRule.antecedent == item, BasketRule.antecedent_2 == item))
    if antecedent_items == 1:
        query = query.where(BasketRule.antecedent_2 == "")
    elif antecedent_items == 2:
        query = query.where(BasketRule.antecedent_2 != "")
    query = query.order_by(
        BasketRule.lift.desc(), BasketRule.orders.desc(), BasketRule.antecedent,
        BasketRule.antecedent_2, BasketRule.consequent,
    ).limit(limit)  # fmt: skip
    with uow.read() as session:
        return [_rule(r) for r in session.scalars(query)]


def _rule(r: BasketRule) -> BasketRuleRead:
    return BasketRuleRead(
        level=r.level, antecedents=_antecedents(r), antecedent=r.antecedent,
        consequent=r.consequent, orders=r.orders, support=r.support, confidence=r.confidence,
        lift=r.lift,
    )  # fmt: skip


def _antecedents(r: BasketRule) -> list[str]:
    return [r.antecedent, r.antecedent_2] if r.antecedent_2 else [r.antecedent]


def new_products(uow: UnitOfWork, *, limit: int) -> list[NewProductRead]:
    """SKUs first bought within the last refresh's new-product window, newest first."""
    with uow.read() as session:
        rows = list(
            session.scalars(
                select(NewProduct)
                .order_by(NewProduct.launched.desc(), NewProduct.penetration.desc(), NewProduct.sku)
                .limit(limit)
            )
        )
        names = commerce.catalogue_for(session, [r.sku for r in rows])
        return [
            NewProductRead.model_validate(r).model_copy(
                update={"name": names[r.sku].name if r.sku in names else None}
            )
            for r in rows
        ]


def recommendations(uow: UnitOfWork, *, member_id: int, limit: int) -> list[Recommendation]:
    """SKUs the member has not bought that their purchases lead to (lift > 1), best first: for
    each, the strongest rule and every bought SKU that leads there."""
    with uow.read() as session:
        return recommend_in(session, member_id=member_id, limit=limit)


def recommend_in(session: Session, *, member_id: int, limit: int) -> list[Recommendation]:
    """recommendations() inside the caller's transaction."""
    member = members.current_member(session, member_id).id
    bought = sorted(commerce.skus_bought(session, member_id=member))
    owned = set(bought)
    best: dict[str, BasketRule] = {}
    because: dict[str, list[str]] = {}
    for start in range(0, len(bought), _BATCH):
        chunk = bought[start : start + _BATCH]
        for rule in session.scalars(
            select(BasketRule).where(
                BasketRule.level == "sku",
                BasketRule.antecedent.in_(chunk),
                BasketRule.lift > 1,
            )
        ):
            if rule.consequent in owned or (rule.antecedent_2 and rule.antecedent_2 not in owned):
                continue  # bought already, or only half of a two-item antecedent
            reasons = because.setdefault(rule.consequent, [])
            reasons.extend(a for a in _antecedents(rule) if a not in reasons)
            held = best.get(rule.consequent)
            if held is None or (rule.lift, rule.confidence) > (held.lift, held.confidence):
                best[rule.consequent] = rule
    ranked = sorted(best.values(), key=lambda r: (-r.lift, -r.confidence, r.consequent))
    chosen = ranked[:limit]
    names = commerce.catalogue_for(session, [r.consequent for r in chosen])
    return [
        Recommendation(
            sku=r.consequent,
            name=names[r.consequent].name if r.consequent in names else None,
            lift=r.lift,
            confidence=r.confidence,
            because=sorted(because[r.consequent]),
        )
        for r in chosen
    ]
