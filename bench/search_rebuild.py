"""Part 2 of ``bench/search.py``: rebuilds on the database backend and the Meilisearch stand-in,
streamed against built in memory (the baseline), each in a fresh process so its peak RSS is its own."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from bench.search_pages import make_pages
from bench.search_setup import ROOT, configure

SCRIPT = ROOT / "bench" / "search.py"  # the child is this benchmark's own command line (``--child``)


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak_rss() -> float:
    """Start peak tracking afresh (Linux: clear_refs 5 resets VmHWM); returns the RSS now."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass  # then the peak also covers start-up, which only makes growth ratios look smaller
    return _status_mb("VmRSS")


def peak_rss_mb() -> float:
    return _status_mb("VmHWM")


def child_rebuild(backend: str, meilisearch_url: str, database_url: str, naive: bool) -> None:
    """Runs in its own process; prints one JSON line."""
    configure(database_url, backend, meilisearch_url)
    from asgiref.sync import async_to_sync, sync_to_async

    from pydotorg.search import documents, rebuild
    from pydotorg.search.backends import get_backend

    backend_obj = get_backend()
    before = reset_peak_rss()
    started = time.perf_counter()
    if naive:

        async def everything_in_memory() -> int:
            docs = []
            for content_type in documents.TYPES:
                after = 0
                while True:
                    chunk, last = await sync_to_async(documents.chunk_after)(content_type, after, 5000)
                    if not chunk:
                        break
                    docs.extend(chunk)
                    after = last
            building = await backend_obj.start_rebuild()
            for start in range(0, len(docs), rebuild.CHUNK_SIZE):
                await building.add(docs[start : start + rebuild.CHUNK_SIZE])
            await building.commit()
            return len(docs)

        total = async_to_sync(everything_in_memory)()
    else:
        result = async_to_sync(rebuild.rebuild_index)(backend_obj)
        total = sum(result["documents"].values())
    seconds = time.perf_counter() - started
    print(json.dumps({"docs": total, "seconds": seconds, "rss_start": before, "rss_peak": peak_rss_mb()}))


def run_child(backend: str, meilisearch_url: str, database_url: str, naive: bool) -> dict:
    args = [sys.executable, str(SCRIPT), "--child", backend, "--meilisearch-url", meilisearch_url, "--db", database_url]
    if naive:
        args.append("--naive")
    out = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"rebuild child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def start_stand_in() -> tuple[subprocess.Popen, str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.search.fake_meilisearch", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    process.stdout.readline()  # "listening on ..."
    return process, f"http://127.0.0.1:{port}"


def rebuilds(sizes: list[int], test_db_url: str) -> None:
    from pydotorg.pages.models import Page

    stand_in, stand_in_url = start_stand_in()
    results: dict[tuple[str, str, int], dict] = {}
    try:
        for size in sorted(sizes):
            have = Page.objects.count()
            make_pages(have, size - have)
            print(f"Rebuild of {size:,} documents:")
            for backend, url in (("database", ""), ("meilisearch", stand_in_url)):
                for mode in ("streamed", "in-memory baseline"):
                    r = run_child(backend, url, test_db_url, naive=mode != "streamed")
                    results[(backend, mode, size)] = r
                    label = "database" if backend == "database" else "stand-in"
                    print(
                        f"  {label:<9} {mode:<19} {r['seconds']:7.2f} s  {r['docs'] / r['seconds']:9,.0f} docs/s  "
                        f"peak RSS {r['rss_peak']:6.0f} MB (RSS before the rebuild {r['rss_start']:.0f} MB)"
                    )
            print()
    finally:
        stand_in.terminate()
        stand_in.wait(timeout=30)
    if len(sizes) >= 2:
        small, large = min(sizes), max(sizes)
        print(f"Peak RSS growth {small:,} -> {large:,} documents (target <= 1.5x for the streamed rebuild):")
        for backend in ("database", "meilisearch"):
            label = "database" if backend == "database" else "stand-in"
            streamed = (
                results[(backend, "streamed", large)]["rss_peak"] / results[(backend, "streamed", small)]["rss_peak"]
            )
            naive = (
                results[(backend, "in-memory baseline", large)]["rss_peak"]
                / results[(backend, "in-memory baseline", small)]["rss_peak"]
            )
            print(
                f"  {label:<9} streamed {streamed:.2f}x ({'met' if streamed <= 1.5 else 'MISSED'}), "
                f"in-memory baseline {naive:.2f}x"
            )
        print(f"Time at {large:,} documents, streamed / in-memory baseline:")
        for backend in ("database", "meilisearch"):
            label = "database" if backend == "database" else "stand-in"
            streamed, naive = results[(backend, "streamed", large)], results[(backend, "in-memory baseline", large)]
            print(f"  {label:<9} {streamed['seconds'] / naive['seconds']:.2f}x")
        db = results[("database", "streamed", large)]
        rate = db["docs"] / db["seconds"]
        print(
            f"Database backend throughput at {large:,}: {rate:,.0f} docs/s "
            f"(target >= 5,000: {'met' if rate >= 5000 else 'MISSED'})"
        )
