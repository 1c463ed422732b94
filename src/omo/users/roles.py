"""What each role may do in the UI (pure). Checked on every view, not only hidden in menus."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"  # everything, settings included
    MARKETER = "marketer"  # dashboard, members, segments, journeys, coupons
    STAFF = "staff"  # the POS page and members, bound to one store
    MANAGER = "manager"  # a store's staff who also approve what the returns policy holds back
    ANALYST = "analyst"  # dashboards and reports; no raw personal data


class Permission(StrEnum):
    DASHBOARD = "dashboard"
    MEMBERS = "members"  # search and open members
    PII = "pii"  # see phones, e-mails, addresses unmasked
    POS = "pos"  # look members up and sell at a till
    JOURNEYS = "journeys"
    COUPONS = "coupons"  # give a member a coupon
    SETTINGS = "settings"  # tiers, points rules, coupon templates, users
    ALL_STORES = "all_stores"  # not bound to one store
    APPROVE_REFUNDS = "approve_refunds"  # let a refund past the returns policy
    REOPEN_DAYS = "reopen_days"  # reopen a store's closed day (取消日結)


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.MARKETER: frozenset(
        {
            Permission.DASHBOARD,
            Permission.MEMBERS,
            Permission.PII,
            Permission.JOURNEYS,
            Permission.COUPONS,
            Permission.ALL_STORES,
        }
    ),
    Role.STAFF: frozenset({Permission.MEMBERS, Permission.PII, Permission.POS}),
    Role.MANAGER: frozenset(
        {
            Permission.MEMBERS,
            Permission.PII,
            Permission.POS,
            Permission.APPROVE_REFUNDS,
            Permission.REOPEN_DAYS,
        }
    ),
    Role.ANALYST: frozenset(
        {Permission.DASHBOARD, Permission.MEMBERS, Permission.JOURNEYS, Permission.ALL_STORES}
    ),
}


def may(role: str, permission: Permission) -> bool:
    try:
        return permission in GRANTS[Role(role)]
    except ValueError:
        return False


STORE_ROLES = frozenset({Role.STAFF, Role.MANAGER})  # bound to one store
