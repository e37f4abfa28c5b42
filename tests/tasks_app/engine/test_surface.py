"""The queue class speaks SAQ's API only; the engine's own operations are functions of engine modules,
and no module outside the engine imports SAQ's internals."""

import ast
import inspect
from pathlib import Path

from saq.queue.redis import RedisQueue

import tasks_app
from tasks_app.engine.queue import AtomicRedisQueue

ROOT = Path(tasks_app.__file__).parent
SAQ_PUBLIC_MODULES = {"saq", "saq.job", "saq.queue", "saq.queue.redis", "saq.types", "saq.web.aiohttp"}


def test_the_queue_adds_no_public_method_to_saqs():
    saq_names = {name for name in dir(RedisQueue) if not name.startswith("_")}
    own = {
        name
        for name, member in vars(AtomicRedisQueue).items()
        if not name.startswith("_") and (inspect.isfunction(member) or isinstance(member, property))
    }
    assert own - saq_names == set()


def test_no_module_outside_the_engine_imports_saqs_internals():
    found = []
    for path in ROOT.rglob("*.py"):
        if "engine" in path.relative_to(ROOT).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            modules = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "saq":
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names if alias.name.split(".")[0] == "saq"]
            found += [f"{path.relative_to(ROOT)}: {module}" for module in modules if module not in SAQ_PUBLIC_MODULES]
    assert found == []
