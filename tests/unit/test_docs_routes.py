"""The calls the README and docs/ name are the API's: a route renamed or dropped fails here, not
in an integrator's till."""

from __future__ import annotations

import re
from pathlib import Path

from omo.app import create_app
from omo.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CALL = re.compile(r"\b(GET|POST|PUT|PATCH|DELETE) (/api/v1/[^\s`?)\"',\[]*)")


def _named() -> list[tuple[str, str, str]]:
    """(file, method, path) of every `METHOD /api/v1/…` written in the README and docs/."""
    found = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for m in CALL.finditer(doc.read_text(encoding="utf-8")):
            found.append((doc.name, m.group(1), m.group(2).rstrip(".:;")))
    return found


def test_every_call_the_docs_name_is_routed(tmp_path: Path) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/omo.sqlite"))
    routed = {
        (method.upper(), re.sub(r"\{[^}]*\}", "{}", path))
        for path, ops in app.openapi()["paths"].items()
        for method in ops
    }
    named = _named()
    assert len(named) > 60 and any(f == "till.md" for f, _, _ in named)
    unrouted = [
        (f, method, path)
        for f, method, path in named
        if (method, re.sub(r"\{[^}]*\}", "{}", path)) not in routed
    ]
    assert unrouted == []
