"""`make run` installs omo without its dev extras: every module `omo serve` and `omo` may import
must come from the base dependencies. The suite runs with the dev extras installed, so a module
that imports a package only they bring (httpx, once) passes every other test and fails on a fresh
machine's first command."""

from __future__ import annotations

import importlib.metadata as md
import re

from packaging.requirements import Requirement

from tests.conftest import fresh_python


def _base_closure() -> set[str]:
    """The distributions a plain `pip install omo` brings: its requirements without extras, and
    theirs, with their markers as this interpreter sees them (no extra asked)."""
    seen: set[str] = set()
    todo = ["omo"]
    while todo:
        name = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue  # a requirement of another platform or Python
        for raw in dist.requires or []:
            req = Requirement(raw)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


def test_every_module_of_omo_imports_from_the_base_dependencies() -> None:
    base = _base_closure()
    blocked = sorted(
        module
        for module, dists in md.packages_distributions().items()
        if not any(re.sub(r"[-_.]+", "-", d).lower() in base for d in dists)
        and module.isidentifier()
    )
    assert "hypothesis" in blocked and "playwright" in blocked  # the closure is not everything
    assert "fastapi" not in blocked and "sqlalchemy" not in blocked
    failed = fresh_python(
        f"""
        import importlib, importlib.abc, json, pkgutil, sys
        BLOCKED = set({blocked!r})

        class DevOnly(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.partition(".")[0] in BLOCKED:
                    raise ModuleNotFoundError(f"{{name}} comes only with omo's dev extras")
                return None

        sys.meta_path.insert(0, DevOnly())
        import omo
        failed = {{}}
        for m in pkgutil.walk_packages(omo.__path__, "omo."):
            # test helpers and migration scripts (alembic runs those) are not served
            if m.name.startswith(("omo.testing", "omo.migrations")):
                continue
            try:
                importlib.import_module(m.name)
            except ImportError as exc:
                failed[m.name] = str(exc)
        print(json.dumps(failed))
        """
    )
    assert failed == {}
