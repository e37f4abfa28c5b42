"""No module of the project is over 400 lines (the team's style rule: a module has one job, and a newcomer
reads it whole). Migrations are generated, not read, and are left out."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("tasks_app", "pydotorg", "bench", "tests", ".ci")
MOST_LINES = 400


def test_no_module_is_over_400_lines():
    paths = [*ROOT.glob("*.py"), *(path for folder in FOLDERS for path in (ROOT / folder).rglob("*.py"))]
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for path in paths
        if "migrations" not in path.parts
    }
    assert "tasks_app/conf.py" in sizes and "manage.py" in sizes  # the folders were found
    assert {name: lines for name, lines in sizes.items() if lines > MOST_LINES} == {}
