"""Blogs does not know search: search follows blogs (its models and its entries_changed signal), never
the other way round, so the two apps have no import cycle. The one exception is blogs/search.py, the
declaration of the blog entry's search document that search imports at start-up; search itself imports
no module of blogs (or of any content app)."""

import ast
from pathlib import Path

import pydotorg.blogs

ROOT = Path(pydotorg.blogs.__file__).parent
FORBIDDEN = "pydotorg.search"
# Calls that import a module named by a string.
IMPORTING_CALLS = {"import_module", "__import__", "import_string"}


def imported_names(source: str, path: Path) -> set[str]:
    """Every module the ``source`` of ``path`` imports: function-level, relative and by-string imports included."""
    parts = path.relative_to(ROOT.parent.parent).with_suffix("").parts
    package = parts if path.name == "__init__.py" else parts[:-1]
    names = set()
    for node in ast.walk(ast.parse(source, filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names |= {f"{base}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in IMPORTING_CALLS and node.args and isinstance(node.args[0], ast.Constant):
                names.add(str(node.args[0].value))
    return names


def test_no_module_of_blogs_imports_search():
    modules = sorted(path for path in ROOT.rglob("*.py") if path != ROOT / "search.py")
    assert ROOT / "storing.py" in modules
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            name for name in imported_names(path.read_text(), path) if name.startswith(FORBIDDEN)
        )
        for path in modules
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_search_imports_no_content_app():
    search = ROOT.parent / "search"
    modules = sorted(search.rglob("*.py"))
    assert search / "signals.py" in modules
    apps = ("pydotorg.blogs", "pydotorg.jobs", "pydotorg.pages", "pydotorg.events")
    offenders = {
        str(path.relative_to(search)): sorted(
            name for name in imported_names(path.read_text(), path) if name.startswith(apps)
        )
        for path in modules
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_walk_sees_relative_function_level_and_by_string_imports():
    source = (
        "def late():\n"
        "    from ..search import scheduling\n"
        "    from .. import search\n"
        "    import pydotorg.search.signals\n"
        "    importlib.import_module('pydotorg.search.tasks')\n"
    )
    names = imported_names(source, ROOT / "probe.py")
    assert {
        "pydotorg.search.scheduling",
        "pydotorg.search",
        "pydotorg.search.signals",
        "pydotorg.search.tasks",
    } <= names
