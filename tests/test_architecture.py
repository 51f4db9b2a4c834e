"""Package dependencies run one way (docs/architecture.md): a forbidden import fails here.

- ``signaling/`` imports nothing from ``dropin`` or ``workers`` (it declares what it needs in
  ``signaling/ports.py``; ``dropin`` implements it);
- ``dropin/`` does not import ``workers``, except the composition roots ``dropin/cli.py`` and
  ``dropin/web/app.py``; nor ``signaling``, except those and the adapter that implements
  signaling's port (``dropin/services/room_access.py``), the join page's routes
  (``dropin/web/pages.py``) and the app's state that holds the hub (``dropin/web/state.py``);
- ``dropin/domain/`` is pure: no SQLAlchemy, no storage, services or web layer.

Every import counts, including those inside functions and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

COMPOSITION_ROOTS = {"dropin/cli.py", "dropin/web/app.py"}
# Where dropin meets signaling: the adapter that implements signaling's port
# (signaling/ports.py), the pages that serve the join page and exchange its links, and the
# app's lifespan state that holds the room hub.
SIGNALING_ADAPTERS = {
    "dropin/services/room_access.py",
    "dropin/web/pages.py",
    "dropin/web/state.py",
}
DOMAIN_FORBIDDEN = ("sqlalchemy", "dropin.store", "dropin.services", "dropin.web")


def imported_modules(tree: ast.AST, package: str) -> list[tuple[int, str]]:
    """Every module an AST imports, absolute, with its line (relative imports resolved
    against ``package``, the importing module's package)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            # ``from dropin import services`` imports dropin.services.
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def forbidden(path: str, module: str) -> bool:
    """Whether the file at ``path`` (relative, with slashes) may not import ``module``."""

    def under(*prefixes: str) -> bool:
        return any(module == p or module.startswith(p + ".") for p in prefixes)

    if path.startswith("signaling/"):
        return under("dropin", "workers")
    if path.startswith("dropin/domain/") and under(*DOMAIN_FORBIDDEN):
        return True
    if path.startswith("dropin/") and path not in COMPOSITION_ROOTS:
        return under("workers") or (path not in SIGNALING_ADAPTERS and under("signaling"))
    return False


def violations(root: Path = ROOT) -> list[str]:
    found: list[str] = []
    for top in ("signaling", "dropin"):
        for file in sorted((root / top).rglob("*.py")):
            path = file.relative_to(root).as_posix()
            package = ".".join(file.relative_to(root).with_suffix("").parts[:-1])
            tree = ast.parse(file.read_text(encoding="utf-8"), filename=path)
            seen: set[tuple[int, str]] = set()
            for line, module in imported_modules(tree, package):
                if forbidden(path, module) and (line, module.split(".")[0]) not in seen:
                    seen.add((line, module.split(".")[0]))
                    found.append(f"{path}:{line}: imports {module}")
    return found


def test_packages_depend_one_way() -> None:
    found = violations()
    assert not found, "forbidden imports (see this test's docstring):\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("path", "module", "refused"),
    [
        ("signaling/hub.py", "dropin.services.links", True),
        ("signaling/ws.py", "dropin", True),
        ("signaling/live.py", "workers.jobs", True),
        ("signaling/hub.py", "signaling.ports", False),
        ("signaling/hub.py", "dropinx", False),
        ("dropin/web/dispatch.py", "workers.jobs", True),
        ("dropin/web/app.py", "workers.jobs", False),
        ("dropin/cli.py", "workers", False),
        ("dropin/web/app.py", "signaling.hub", False),
        ("dropin/domain/session.py", "sqlalchemy.sql", True),
        ("dropin/domain/session.py", "dropin.store.db", True),
        ("dropin/domain/session.py", "dropin.domain.states", False),
        ("dropin/services/rooms.py", "sqlalchemy", False),
        ("dropin/services/rooms.py", "signaling.ports", True),
        ("dropin/services/room_access.py", "signaling.ports", False),
        ("workers/jobs.py", "dropin.services", False),
    ],
)
def test_the_rules(path: str, module: str, refused: bool) -> None:
    assert forbidden(path, module) is refused


def test_imports_inside_functions_and_relative_imports_count(tmp_path: Path) -> None:
    (tmp_path / "signaling").mkdir()
    (tmp_path / "dropin" / "domain").mkdir(parents=True)
    (tmp_path / "signaling" / "x.py").write_text(
        "def f():\n    from dropin.web.state import app_state\n    return app_state\n"
    )
    (tmp_path / "dropin" / "domain" / "y.py").write_text("from ..store import db\n")
    assert violations(tmp_path) == [
        "signaling/x.py:2: imports dropin.web.state",
        "dropin/domain/y.py:1: imports dropin.store",
    ]


def top_level_names(tree: ast.Module) -> list[str]:
    """Classes and type aliases (capitalised, not CONSTANTS) a module defines at top level."""
    names = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names.append(node.name.lstrip("_"))
        elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name[:1].isupper() and not name.isupper():
                names.append(name.lstrip("_"))
    return names


def test_distinct_things_have_distinct_names() -> None:
    """No two modules define a class or type alias of the same name (issue 11, item 7)."""
    where: dict[str, list[str]] = {}
    for package in ("dropin", "signaling", "workers"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            rel = path.relative_to(ROOT).as_posix()
            for name in top_level_names(ast.parse(path.read_text(), rel)):
                where.setdefault(name, []).append(rel)
    shared = {name: files for name, files in where.items() if len(files) > 1}
    assert not shared, shared


def test_the_name_check_sees_aliases_and_private_classes() -> None:
    tree = ast.parse("class _Slot: ...\nKind = int\nLIMIT = 3\nclass Room: ...\n")
    assert top_level_names(tree) == ["Slot", "Kind", "Room"]
