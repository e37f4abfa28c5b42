"""tasks_app's layout holds: no import cycles (function-level imports included), SAQ's internals touched
only in engine/, and a public API that stays as documented."""

import ast
from pathlib import Path

import tasks_app

ROOT = Path(tasks_app.__file__).parent
SAQ_PRIVATE = {"_enqueue", "_update", "_retry", "_finish", "_before_enqueue", "_incomplete", "_queued", "_active",
               "_sweep", "_stats", "_cleanup_script", "_get_job_by_id", "_shutdown_grace_period_s", "_process",
               "_op_sem", "_pubsub", "_dump", "_load"}  # fmt: skip


def modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                targets.add(full if full in known else base)
    return {target for target in targets if target in known and target != name}


def test_there_is_no_import_cycle_in_tasks_app():
    found = modules()
    graph = {name: imports_of(name, path, set(found)) for name, path in found.items()}
    # A package's __init__ re-exporting its own modules is not a cycle of those modules.
    cycles, index, low, stack, on_stack, counter = [], {}, {}, [], set(), [0]

    def visit(node):  # Tarjan's strongly connected components
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    assert cycles == []


def test_saq_internals_are_touched_only_in_engine():
    offenders = []
    for name, path in modules().items():
        if name.startswith("tasks_app.engine"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in SAQ_PRIVATE:
                offenders.append(f"{name}:{node.lineno} .{node.attr}")
            if (
                isinstance(node, ast.ImportFrom)
                and (node.module or "").startswith("saq")
                and any(alias.name.startswith("_") for alias in node.names)
            ):
                offenders.append(f"{name}:{node.lineno} from {node.module} import _...")
    assert offenders == []


def test_the_public_api_is_unchanged():
    from tasks_app import aenqueue, enqueue, enqueue_on_commit, enqueue_sync, task  # noqa: F401
    from tasks_app.backends import SAQBackend  # noqa: F401

    assert {"aenqueue", "enqueue", "enqueue_on_commit", "enqueue_sync", "task"} <= set(tasks_app.__all__)
