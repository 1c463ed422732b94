"""The admin UI's pages under /ui: parse, call a use case, render a template. Every view checks
the role (and the store, for store staff); every form carries the CSRF token; personal data
never travels in a URL (member search is a POST)."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Annotated, Any
from urllib.parse import quote

import jinja2
from fastapi import APIRouter, Depends, FastAPI, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from omo.customer_view import service as customer_view
from omo.ops.unavailable import RETRY_AFTER_S
from omo.shared.errors import DomainError, NotFound
from omo.shared.schemas import MAX_ID
from omo.shared.secrets import secret_key
from omo.users import service as users
from omo.users.roles import Permission, may
from omo.web import card, coupon_terms, i18n, pages, pos, pos_returns, refusals
from omo.web.session import (
    NotAllowed,
    NotSignedIn,
    check_csrf,
    csrf_token,
    current_user,
    require,
    shown,
    sign_in,
)

router = APIRouter(prefix="/ui", include_in_schema=False)
LANG_COOKIE = "omo_lang"


@lru_cache(maxsize=4)
def _environment(lang: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("omo.web", "templates"),
        autoescape=True,  # every value is escaped unless a template says otherwise
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
    )
    env.filters["pretty"] = lambda v: json.dumps(v, ensure_ascii=False, indent=2)
    env.install_gettext_callables(  # type: ignore[attr-defined]
        lambda text: i18n.gettext(lang, text),
        lambda one, many, n: i18n.gettext(lang, one if n == 1 else many),
        newstyle=True,
    )
    return env


def _lang(request: Request) -> str:
    return i18n.pick(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))


def render(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    try:
        user = current_user(request)
    except NotSignedIn:
        user = None
    return _page(request, template, status, user, **values)


def unavailable_page(request: Request) -> HTMLResponse:
    """The pages' answer when the database is out of reach or busy (ops/unavailable.py), in
    the page's language; no user is looked up, which would need the database."""
    page = _page(request, "unavailable.html", 503, None)
    page.headers["Retry-After"] = str(RETRY_AFTER_S)
    return page


def _page(request: Request, template: str, status: int, user: Any, **values: Any) -> HTMLResponse:
    lang = _lang(request)
    fmt = i18n.Formats(lang)
    html = _environment(lang).get_template(template).render(
        request=request, user=user, lang=lang, languages=i18n.LANGUAGES,
        fmt=fmt, say=lambda refusal: refusals.said(lang, fmt, refusal),
        terms=lambda coupon, stores=None: coupon_terms.said(lang, fmt, coupon.terms, stores),
        csrf=csrf_token(request), may=may, Permission=Permission,
        shown=(lambda v: shown(user, v)) if user else (lambda v: v), **values,
    )  # fmt: skip
    return HTMLResponse(html, status_code=status)


def install(app: FastAPI) -> None:
    """Mount the UI, its static files and its answers to 'not signed in' and 'not allowed'."""
    from omo.web import admin, insight, marketing, member_loyalty  # they render with render()

    app.include_router(router)
    app.include_router(marketing.router)
    app.include_router(insight.router)
    app.include_router(admin.router)
    app.include_router(member_loyalty.router)
    app.mount("/static", StaticFiles(packages=[("omo.web", "static")]), name="static")
    app.state.unavailable_page = unavailable_page

    @app.exception_handler(NotSignedIn)
    async def _login(request: Request, _exc: NotSignedIn) -> Response:
        return RedirectResponse(f"/ui/login?next={quote(request.url.path)}", status_code=303)

    @app.exception_handler(NotAllowed)
    async def _forbidden(request: Request, exc: NotAllowed) -> Response:
        return render(request, "forbidden.html", status=403, reason=str(exc))

    @app.get("/", include_in_schema=False)
    def _home() -> Response:
        return RedirectResponse("/ui/", status_code=303)

    @app.get("/card/{token}", include_in_schema=False)
    def member_card(
        request: Request, token: Annotated[str, Path(max_length=200)],
        claimed: Annotated[str, Query(max_length=20)] = "",
    ) -> Response:  # fmt: skip
        # a member's link, mangled by an app that opened it, still shows the card
        return _card_page(request, token, claimed=claimed == "true")

    @app.post("/card/{token}/claim", include_in_schema=False)
    def claim_on_card(
        request: Request, token: Annotated[str, Path(max_length=200)],
        template: Annotated[str, Form(max_length=40)], key: Annotated[str, Form(max_length=80)],
    ) -> Response:  # fmt: skip
        """A 領取 button on the card: the signed link is the member's say-so (no session)."""
        secret = secret_key(request.app.state.settings)
        try:
            got = card.claim(request.app.state.uow, secret=secret, token=token,
                             template=template, key=key)  # fmt: skip
        except DomainError as exc:
            return _card_page(request, token, refused=exc, status=exc.status_code)
        if got is None:
            return _card_page(request, token)
        return RedirectResponse(f"/card/{quote(token)}?claimed=true", status_code=303)


def _card_page(
    request: Request, token: str, *, claimed: bool = False, refused: DomainError | None = None,
    status: int = 200,
) -> Response:  # fmt: skip
    settings = request.app.state.settings
    found = card.card(request.app.state.uow, secret=secret_key(settings), token=token,
                      referral_link=settings.referral_link)  # fmt: skip
    answer = render(request, "card.html", status=status if found else 404, c=found,
                    claimed=claimed, claim_refused=refused)  # fmt: skip
    answer.headers["Cache-Control"] = "no-store"  # a card is personal
    return answer


def _local(path: str | None) -> str:
    """Only a path on this site (no open redirect through ?next=)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/ui/"
    return path


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    return render(request, "login.html", next=_local(next), error=None)


@router.post("/login")
def login(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=200)],
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/ui/",
) -> Response:
    check_csrf(request, csrf)
    try:
        user = users.authenticate(request.app.state.uow, username=username, password=password)
    except users.TooManyAttempts:
        return render(
            request, "login.html", status=429, next=_local(next),
            error="Too many wrong passwords: try again in a few minutes",
        )  # fmt: skip
    if user is None:
        return render(
            request, "login.html", status=401, next=_local(next),
            error="Wrong user name or password",
        )  # fmt: skip
    sign_in(request, user)
    return RedirectResponse(_local(next), status_code=303)


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    check_csrf(request, csrf)
    request.session.clear()
    return RedirectResponse("/ui/login", status_code=303)


@router.get("/lang/{code}")
def choose_language(code: str, next: str | None = None) -> Response:
    answer = RedirectResponse(_local(next), status_code=303)
    if code in i18n.LANGUAGES:
        answer.set_cookie(LANG_COOKIE, code, max_age=365 * 86_400, samesite="lax")
    return answer


@router.get("/")
def dashboard(request: Request) -> Response:
    user = current_user(request)
    if not may(user.role, Permission.DASHBOARD):  # store staff start at their till
        return RedirectResponse("/ui/members", status_code=303)
    zone = request.app.state.settings.time_zone
    return render(request, "dashboard.html", page=pages.dashboard(request.app.state.uow, zone=zone))


@router.get("/members")
def members_page(request: Request) -> HTMLResponse:
    require(request, Permission.MEMBERS)
    return render(request, "members.html", query="", found=None)


@router.post("/members")
def search_members(
    request: Request,
    q: Annotated[str, Form(max_length=200)] = "",
    csrf: Annotated[str, Form()] = "",
) -> HTMLResponse:
    require(request, Permission.MEMBERS)
    check_csrf(request, csrf)
    settings = request.app.state.settings
    found = customer_view.find(request.app.state.uow, text=q, region=settings.default_region)
    return render(request, "members.html", query=q, found=found)


@router.get("/members/{member_id}")
def member_page(request: Request, member_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> HTMLResponse:
    require(request, Permission.MEMBERS)
    try:
        page = pages.member_page(request.app.state.uow, member_id=member_id)
    except NotFound:
        return render(request, "not_found.html", status=404)
    return render(request, "member.html", page=page)


@router.post("/members/{member_id}/coupons")
def issue_coupon(
    request: Request,
    member_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    template: Annotated[str, Form(max_length=40)],
    csrf: Annotated[str, Form()] = "",
    issue_id: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Give the member a coupon now (the form's issue id makes a double click issue once)."""
    user = require(request, Permission.COUPONS)
    check_csrf(request, csrf)
    result = pages.issue_coupon(
        request.app.state.uow, member_id=member_id, template=template,
        key=f"ui:{user.username}:{issue_id or 'once'}",
    )  # fmt: skip
    if result:
        return render(request, "forbidden.html", status=422, reason=result,
                      back=f"/ui/members/{member_id}")  # fmt: skip
    return RedirectResponse(f"/ui/members/{member_id}", status_code=303)


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


FormData = Annotated[dict[str, str], Depends(_form)]


@router.get("/stores/{store_id}")
def store_page(
    request: Request,
    store_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    day: Annotated[str | None, Query(max_length=10)] = None,
) -> HTMLResponse:
    return _store(request, store_id, day=day, journal=None)


@router.post("/stores/{store_id}/reconcile")
def store_reconcile(
    request: Request, store_id: Annotated[int, Path(ge=1, le=MAX_ID)], form: FormData
) -> HTMLResponse:
    """The till's receipts pasted at closing, matched against the day (changes nothing)."""
    require(request, Permission.MEMBERS)
    check_csrf(request, form.get("csrf"))
    return _store(request, store_id, day=form.get("day"), journal=form.get("journal", ""))


@router.post("/stores/{store_id}/close")
def store_close(
    request: Request, store_id: Annotated[int, Path(ge=1, le=MAX_ID)], form: FormData
) -> HTMLResponse:
    """日結確認: the day's figures kept as they are now (once the day is over)."""
    require(request, Permission.MEMBERS)
    check_csrf(request, form.get("csrf"))
    return _store(request, store_id, day=form.get("day"), journal=None, close=True)


@router.post("/stores/{store_id}/reopen")
def store_reopen(
    request: Request, store_id: Annotated[int, Path(ge=1, le=MAX_ID)], form: FormData
) -> HTMLResponse:
    """取消日結: a closed day opened again, with a reason (a store's manager, an admin)."""
    require(request, Permission.REOPEN_DAYS)
    check_csrf(request, form.get("csrf"))
    return _store(request, store_id, day=form.get("day"), journal=None,
                  reopen=form.get("reason", ""))  # fmt: skip


def _store(
    request: Request, store_id: int, *, day: str | None, journal: str | None,
    close: bool = False, reopen: str | None = None,
) -> HTMLResponse:  # fmt: skip
    user = require(request, Permission.MEMBERS)
    if not pages.may_open_store(user, store_id):
        raise NotAllowed("this page belongs to another store")
    uow, settings = request.app.state.uow, request.app.state.settings
    try:
        the_day = pages.store_day(uow, user=user, store_id=store_id, day=day,
                                  time_zone=settings.time_zone, journal=journal,
                                  close=close, reopen=reopen)  # fmt: skip
    except NotFound:
        return render(request, "not_found.html", status=404)
    tasks = pages.store_tasks(uow, store_id=store_id)
    pickups = pages.store_pickups(uow, store_id=store_id)
    return render(request, "store.html", status=422 if the_day.error else 200,
                  store_id=store_id, tasks=tasks, pickups=pickups, d=the_day,
                  may_reopen=may(user.role, Permission.REOPEN_DAYS))  # fmt: skip


@router.get("/settings")
def settings_page(request: Request) -> HTMLResponse:
    require(request, Permission.SETTINGS)
    page = pages.settings(request.app.state.uow, app=request.app.state.settings)
    return render(
        request, "settings.html", page=page, error=None, drafts=pages.editor_values(page), code=""
    )


@router.get("/pos")
def pos_page(request: Request) -> HTMLResponse:
    user = require(request, Permission.POS)
    stores = pos.stores_for(request.app.state.uow, user)
    return render(request, "pos.html", stores=stores, s=pos.PosState(),
                  return_channels=pos_returns.CHANNELS)  # fmt: skip


@router.post("/pos")
def pos_step(request: Request, form: FormData) -> HTMLResponse:
    """One step at the till: look up, price the basket, or commit the sale."""
    user = require(request, Permission.POS)
    check_csrf(request, form.get("csrf"))
    uow, settings = request.app.state.uow, request.app.state.settings
    stores = pos.stores_for(uow, user)
    state = pos.step(
        uow, form=form, user=user, stores=stores, secret=secret_key(settings),
        region=settings.default_region, currency=settings.currency, unit=settings.price_unit,
    )  # fmt: skip
    return render(request, "pos.html", status=422 if state.error else 200, stores=stores, s=state,
                  return_channels=pos_returns.CHANNELS)  # fmt: skip
