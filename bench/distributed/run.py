"""``python -m bench.distributed``: the fault harness, one fault after another, then its table (and figures).

    sudo uv run python -m bench.distributed [--faults kill-primary,partition,pause,skew,kill-worker]
        [--fault-seconds 60] [--hosts 3] [--figures | --no-figures]

It needs root (network namespaces). It prints, per fault, the checker's row (``checks.py``), and
exits 1 when a row is not as it must be (lost, not terminal, double terminal, unexplained re-runs,
broken invariants), 2 for bad arguments or a harness that could not start.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from .faults import FAULTS
from .topology import DOWN_AFTER_MS

DEFAULT_FAULTS = ",".join(FAULTS)


def faults_argument(value: str) -> list[str]:
    if value == "none":
        return []  # the figures only
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in FAULTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"--faults: unknown {unknown or value!r}; choose from {DEFAULT_FAULTS}")
    return names


def positive(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, not {value}")
    return number


def milliseconds(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 100 <= number <= 60000:
        raise argparse.ArgumentTypeError(f"a whole number of milliseconds from 100 to 60000, not {value!r}")
    return number


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.distributed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--faults", type=faults_argument, default=faults_argument(DEFAULT_FAULTS),
                        help=f"comma-separated, run in this order, or none (default: {DEFAULT_FAULTS})")  # fmt: skip
    parser.add_argument("--fault-seconds", type=positive, default=60.0, help="how long each fault lasts (default 60)")
    parser.add_argument("--hosts", type=int, choices=range(3, 11), default=3, metavar="3..10", help="worker hosts")
    parser.add_argument("--replicas", type=int, choices=range(1, 4), default=1, metavar="1..3",
                        help="replicas of the Redis primary (default 1; with 1, wait_replicas=1 refuses enqueues "
                        "after a failover until the old primary is back as a replica)")  # fmt: skip
    parser.add_argument("--down-after-ms", type=milliseconds, default=DOWN_AFTER_MS, metavar="100..60000",
                        help=f"the sentinels' down-after-milliseconds (default {DOWN_AFTER_MS}; under 5000, a new "
                        "primary slow to answer its first PING can be failed over again)")  # fmt: skip
    parser.add_argument("--concurrency", type=int, default=10, help="jobs at once per worker (default 10)")
    parser.add_argument("--tls-acl", action="store_true",
                        help="the queue's Redis over TLS only, as an ACL user limited to saq:* and no @dangerous "
                        "command but INFO; clients use the primary's rediss:// URL (no kill-primary)")  # fmt: skip
    parser.add_argument("--no-wait-replicas", action="store_true", help="the load's queue without wait_replicas=1")
    parser.add_argument("--figures", action=argparse.BooleanOptionalAction, default=True,
                        help="measure the figures after the faults (default: yes)")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the servers' and workers' logs")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the rows to PATH as JSON (for tests)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if os.geteuid() != 0:
        print("The harness needs root (it makes network namespaces): run it with sudo, as CI runs it.", file=sys.stderr)
        return 2
    directory = Path(tempfile.mkdtemp(prefix="distributed-"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.distributed.settings"  # a test run's may be set: not that one
    from tasks_app.redaction import redact_url

    from . import checks, figures
    from .harness import Harness

    print(f"hosts {args.hosts}, faults {','.join(args.faults)}, {args.fault_seconds:g}s each; logs in {directory}")
    if args.tls_acl:
        print("  (clients use the primary's own URL: --tls-acl)")
        if "kill-primary" in args.faults:
            print("  (so kill-primary is left out)")
            args.faults.remove("kill-primary")
    started = time.monotonic()
    options = {"hosts": args.hosts, "concurrency": args.concurrency, "wait_replicas": not args.no_wait_replicas,
               "tls_acl": args.tls_acl, "replicas": args.replicas, "down_after_ms": args.down_after_ms}  # fmt: skip
    with Harness(directory, **options) as harness:
        print(f"queue {redact_url(os.environ['DIST_QUEUE_URL'])}; up in {time.monotonic() - started:.0f}s", flush=True)
        for name in args.faults:
            t0 = time.monotonic()
            row = harness.run_fault(name, args.fault_seconds)
            print(f"  {name}: {'ok' if row.ok else 'NOT OK'} ({time.monotonic() - t0:.0f}s)", flush=True)
            for note in row.examples:
                print(f"    {note}")
        print()
        print(checks.table(harness.rows))
        if args.json:
            args.json.write_text(json.dumps([checks.as_dict(row) for row in harness.rows], indent=1))
        if args.figures:
            print()
            figures.print_all(harness)
    if not args.keep:
        import shutil

        shutil.rmtree(directory, ignore_errors=True)
    print(f"\n(total {time.monotonic() - started:.0f}s)")
    return 0 if all(row.ok for row in harness.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
