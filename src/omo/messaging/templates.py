"""Message templates: one file per template and locale (messaging/templates/NAME.LOCALE.txt),
a `subject:` line, `---`, then the body, in Jinja2 with strict names (pure).

Links written as {{ link(url) }} become tracked links of the message; {{ unsubscribe_url }} is
its one-click opt-out. Rendering records the links' targets so the click endpoint redirects
only to what the message itself contained.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import jinja2
import jinja2.meta

LOCALES = ("zh-TW", "en")
DEFAULT_LOCALE = "zh-TW"
_FALLBACK = {"zh-CN": "zh-TW", "zh-HK": "zh-TW", "zh": "zh-TW"}


class TemplateMissing(LookupError):
    pass


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str
    links: list[str]


def locale_for(preferred: str | None) -> str:
    """The template locale for a member's preferred language (zh-TW unless we have theirs)."""
    if not preferred:
        return DEFAULT_LOCALE
    if preferred in LOCALES:
        return preferred
    if preferred in _FALLBACK:
        return _FALLBACK[preferred]
    return "en" if preferred.split("-")[0] == "en" else DEFAULT_LOCALE


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    # plain text: nothing to escape; strict, so a misspelt name fails the render, not the member
    return jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)  # noqa: S701


@lru_cache(maxsize=128)
def _source(name: str, locale: str) -> tuple[jinja2.Template, jinja2.Template]:
    folder = resources.files("omo.messaging") / "templates"
    file = folder / f"{name}.{locale}.txt"
    if not file.is_file():
        raise TemplateMissing(f"no template {name!r} in {locale}")
    head, sep, body = file.read_text(encoding="utf-8").partition("\n---\n")
    if not sep or not head.startswith("subject:"):
        raise TemplateMissing(f"template {name}.{locale} needs 'subject: …', '---', the body")
    env = _environment()
    return env.from_string(head.removeprefix("subject:").strip()), env.from_string(body)


@lru_cache(maxsize=128)
def names_used(name: str) -> frozenset[str]:
    """The names a template reads in any locale (so a caller computes only those)."""
    folder = resources.files("omo.messaging") / "templates"
    used: set[str] = set()
    for locale in LOCALES:
        file = folder / f"{name}.{locale}.txt"
        if file.is_file():
            ast = _environment().parse(file.read_text(encoding="utf-8"))
            used |= jinja2.meta.find_undeclared_variables(ast)
    return frozenset(used)


def exists(name: str) -> bool:
    """Whether the template is there in every locale we ship."""
    try:
        for locale in LOCALES:
            _source(name, locale)
    except TemplateMissing:
        return False
    return True


def names() -> list[str]:
    folder = resources.files("omo.messaging") / "templates"
    found = {p.name.split(".")[0] for p in folder.iterdir() if p.name.endswith(".txt")}
    return sorted(n for n in found if exists(n))


def render(name: str, locale: str, context: dict[str, Any], *, link_base: str) -> Rendered:
    """Render a template; links become `{link_base}/c/{n}` in the order they appear."""
    subject, body = _source(name, locale)
    links: list[str] = []

    def link(url: str) -> str:
        links.append(str(url))
        return f"{link_base}/c/{len(links) - 1}"

    values = {**context, "link": link}
    text = body.render(values).strip()
    return Rendered(subject=subject.render(values).strip(), body=text, links=links)
