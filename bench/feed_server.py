"""The feed server of bench/feeds.py, in a process of its own: every feed on a loopback address of its own.

    uv run python bench/feed_server.py --feeds 200 --entries 50 --latency 0.1 --hostile 20 --gzip-bombs 20

prints its port, then serves ``/feed/N`` (RSS, ``--entries`` entries), ``/hostile/N`` (the 10 MB
bombs of tests/blogs/hostile.py) and ``/gzip/N`` (gzip that inflates to 100 MB) on 127.0.x.y,
waiting ``--latency`` seconds before every response and answering ``If-None-Match`` with 304.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HOSTILE_KINDS = ("style", "comment", "tags", "items")
MB = 1024 * 1024
GZIP_BOMB_INFLATED = 100 * MB  # each gzip bomb: ~100 KB on the wire


def host(index: int) -> str:
    """The loopback address standing for feed ``index``'s own server."""
    return f"127.0.{index // 250}.{index % 250 + 1}"


# --- the feed server (runs in its own process: `bench/feeds.py --serve ...`) ---------------


def feed_document(index: int, entries: int) -> bytes:
    items = []
    for n in range(entries):
        paragraph = f"Entry {n} of feed {index}, about Python packaging, typing and asyncio. " * 6
        items.append(
            f"<item><title>Feed {index}: post {n} about Python</title>"
            f"<link>https://blog{index}.example.org/posts/{n}</link>"
            f"<guid>https://blog{index}.example.org/posts/{n}</guid>"
            f"<pubDate>Mon, 06 Sep 2021 {n % 24:02d}:{n % 60:02d}:00 +0000</pubDate>"
            f"<description>&lt;p&gt;{paragraph}&lt;a href='https://www.python.org/'&gt;link&lt;/a&gt;&lt;/p&gt;"
            f"</description></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Blog {index}</title><link>https://blog{index}.example.org/</link>{''.join(items)}"
        "</channel></rss>"
    ).encode()


async def serve(args: argparse.Namespace) -> None:
    from tests.blogs.hostile import hostile

    documents = {f"/feed/{i}": feed_document(i, args.entries) for i in range(args.feeds)}
    bombs = {kind: hostile(kind, 10 * MB) for kind in HOSTILE_KINDS} if args.hostile else {}
    for i in range(args.hostile):
        documents[f"/hostile/{i}"] = bombs[HOSTILE_KINDS[i % len(HOSTILE_KINDS)]]
    gzip_bomb = gzip.compress(b"<rss>" + b" " * GZIP_BOMB_INFLATED) if args.gzip_bombs else b""
    documents.update({f"/gzip/{i}": gzip_bomb for i in range(args.gzip_bombs)})  # ~100 KB each on the wire

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # keep-alive: one request after another on this connection
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
                await asyncio.sleep(args.latency)
                body = documents.get(path)
                etag = f'"{path}"'
                if body is None:
                    status, body, extra = "404 Not Found", b"", ""
                elif headers.get("if-none-match") == etag:
                    status, body, extra = "304 Not Modified", b"", f"ETag: {etag}\r\n"
                else:
                    status, extra = "200 OK", f"ETag: {etag}\r\nContent-Type: application/rss+xml; charset=utf-8\r\n"
                    extra += "Content-Encoding: gzip\r\n" if path.startswith("/gzip/") else ""
                writer.write(f"HTTP/1.1 {status}\r\n{extra}Content-Length: {len(body)}\r\n\r\n".encode("latin-1"))
                writer.write(body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    hosts = [host(i) for i in range(max(args.feeds, args.hostile, args.gzip_bombs))]
    with socket.socket() as probe:  # one port for every address
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = await asyncio.start_server(handle, hosts, port, backlog=1024)
    print(port, flush=True)
    async with server:
        await server.serve_forever()


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen, int]:
    """The server in a process of its own, for ``args`` (bench/feeds.py's); and its port."""
    command = [sys.executable, __file__, "--feeds", str(args.feeds), "--entries", str(args.entries)]
    command += ["--latency", str(args.latency), "--hostile", str(args.hostile), "--gzip-bombs", str(args.gzip_bombs)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    return process, int(process.stdout.readline())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name, kind in (("--feeds", int), ("--entries", int), ("--latency", float), ("--hostile", int)):
        parser.add_argument(name, type=kind, required=True)
    parser.add_argument("--gzip-bombs", type=int, required=True)
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
