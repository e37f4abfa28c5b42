"""Parse sandbox benchmark: the hand-written pool against pebble's ProcessPool, same limits, same documents.

    uv run python bench/parse_pool.py [--workload corpus|generated|both] [--rounds 3] [--in-flight 20]

Issue 18 item 8: a hand-written piece stays only if it gains at least 10% on its workload.
Both pools run here in one run, on the same documents, with the same CPU (RLIMIT_CPU), memory
(RLIMIT_AS) and wall-clock limits and the same number of processes (one per CPU, the default):

- *hand-written*: ``pydotorg/blogs/parse_pool.py`` as of ``--baseline-rev`` (the last commit that
  had it), loaded from git into a temporary module;
- *pebble*: ``pydotorg/blogs/parse_pool.py`` in the work tree (pebble's ``ProcessPool``).

Workloads: ``corpus``, every document of feedparser's test corpus (../shared/corpus/feedparser,
~2,100 small real feeds, so the cost per document dominates); ``generated``, 200 feeds of 50
entries each as ``bench/feeds.py`` serves them. ``--in-flight`` documents are parsed at once, as
``FEEDS_MAX_CONCURRENCY`` refreshes would hand them over. Each round runs both pools, alternating
which goes first; the best round of each counts. Printed: seconds and documents per second of
each, and the ratio (hand-written time / pebble time; above 1.10 the hand-written pool earns its place).

The run that decided (2 CPUs shared with other work, 3 rounds): corpus 2.54 s hand-written, 2.48 s
pebble (0.977x); generated 4.93 s hand-written, 3.66 s pebble (0.743x). Verdict: pebble's pool.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.feed_server import feed_document  # noqa: E402
from pydotorg.blogs.conf import DEFAULTS, cpu_count  # noqa: E402
from pydotorg.blogs.parsing import ParseError, ParseLimits  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus" / "feedparser"
# The last commit with the hand-written pool (before it was replaced by pebble's).
HANDWRITTEN_REV = "2ff540e"
KEEP_THRESHOLD = 1.10


def corpus_documents() -> list[bytes]:
    if not CORPUS.is_dir():
        sys.exit(f"The feedparser corpus is missing: expected it at {CORPUS} (shared/ beside the clone).")
    return [path.read_bytes() for path in sorted(CORPUS.rglob("*.xml"))]


def generated_documents(feeds: int = 200, entries: int = 50) -> list[bytes]:
    return [feed_document(index, entries) for index in range(feeds)]


def handwritten_module(rev: str, directory: Path):
    """The hand-written parse_pool.py of ``rev``, importable by name in the parse processes too."""
    source = subprocess.run(
        ["git", "show", f"{rev}:pydotorg/blogs/parse_pool.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    if "class _Seat" not in source:
        sys.exit(f"{rev}:pydotorg/blogs/parse_pool.py is not the hand-written pool; pass --baseline-rev.")
    path = directory / "handwritten_parse_pool.py"
    path.write_text(source.replace("from .parsing import", "from pydotorg.blogs.parsing import"))
    sys.path.insert(0, str(directory))  # forkserver children get the parent's sys.path
    spec = importlib.util.spec_from_file_location("handwritten_parse_pool", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["handwritten_parse_pool"] = module
    spec.loader.exec_module(module)
    return module


async def parse_all(pool, documents: list[bytes], in_flight: int) -> tuple[float, int]:
    """Seconds to parse every document with ``in_flight`` at once, and how many were refused as not feeds."""
    limits = ParseLimits()
    gate = asyncio.Semaphore(in_flight)
    refused = 0

    async def one(index: int, body: bytes) -> None:
        nonlocal refused
        async with gate:
            try:
                await pool.parse(
                    body,
                    {"content-type": "application/xml"},
                    f"http://127.0.0.1/{index}.xml",
                    limits,
                    cpu_seconds=int(DEFAULTS["PARSE_CPU_SECONDS"]),
                    wall_seconds=float(DEFAULTS["PARSE_TIMEOUT"]),
                )
            except ParseError:
                refused += 1

    started = time.perf_counter()
    await asyncio.gather(*(one(index, body) for index, body in enumerate(documents)))
    return time.perf_counter() - started, refused


def measure(name: str, pool, documents: list[bytes], in_flight: int) -> float:
    asyncio.run(parse_all(pool, documents[:20], in_flight))  # start the processes: not part of the figure
    seconds, refused = asyncio.run(parse_all(pool, documents, in_flight))
    print(f"    {name:<13} {seconds:7.2f} s  {len(documents) / seconds:7.0f} documents/s  ({refused} not feeds)")
    return seconds


def run(args: argparse.Namespace) -> int:
    from pydotorg.blogs import parse_pool as pebble_module

    if not hasattr(pebble_module, "ProcessPool"):
        sys.exit("pydotorg/blogs/parse_pool.py in the work tree is not the pebble pool.")
    processes = cpu_count()
    memory_mb = int(DEFAULTS["PARSE_MEMORY_MB"])
    workloads = {"corpus": corpus_documents, "generated": generated_documents}
    chosen = list(workloads) if args.workload == "both" else [args.workload]
    with tempfile.TemporaryDirectory() as directory:
        handwritten = handwritten_module(args.baseline_rev, Path(directory))
        pools = {
            "hand-written": handwritten.ParsePool(processes, memory_mb),
            "pebble": pebble_module.ParsePool(processes, memory_mb),
        }
        print(
            f"Parse pools: {processes} processes each, {memory_mb} MB, CPU {DEFAULTS['PARSE_CPU_SECONDS']} s, "
            f"wall {DEFAULTS['PARSE_TIMEOUT']} s; {args.in_flight} documents in flight; best of {args.rounds} rounds"
        )
        verdicts = []
        try:
            for workload in chosen:
                documents = workloads[workload]()
                size = sum(map(len, documents)) / len(documents) / 1024
                print(f"  {workload}: {len(documents)} documents, {size:.1f} KB on average")
                best = dict.fromkeys(pools, float("inf"))
                for round_ in range(args.rounds):
                    order = list(pools) if round_ % 2 == 0 else list(reversed(pools))
                    print(f"   round {round_ + 1}")
                    for name in order:
                        best[name] = min(best[name], measure(name, pools[name], documents, args.in_flight))
                ratio = best["pebble"] / best["hand-written"]
                verdicts.append((workload, ratio))
                print(f"  {workload}: hand-written gains {ratio:.3f}x over pebble (pebble time / hand-written time)")
        finally:
            for pool in pools.values():
                pool.close()
    kept = any(ratio >= KEEP_THRESHOLD for _, ratio in verdicts)
    print(
        "Verdict: "
        + ("the hand-written pool gains at least 10%: keep it" if kept else "under a 10% gain: pebble's pool it is")
        + " ("
        + ", ".join(f"{workload} {ratio:.3f}x" for workload, ratio in verdicts)
        + ")"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", choices=["corpus", "generated", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--in-flight", type=int, default=int(DEFAULTS["MAX_CONCURRENCY"]))
    parser.add_argument("--baseline-rev", default=HANDWRITTEN_REV, help="a commit with the hand-written pool")
    return run(parser.parse_args())


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    sys.exit(main())
