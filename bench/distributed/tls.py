"""TLS files and an ACL user for ``--tls-acl`` runs: the queue's Redis reached as ``rediss://`` by a
user who may touch only the queue's keys (issue 19, item 4).

``make_certificates(directory, address)`` writes a CA and a server certificate for ``address``
(an IP SAN) with ``openssl``; the servers require TLS (no plain port), clients check the server's
certificate against the CA and present none (``tls-auth-clients optional``).

``ACL_RULES`` is the worker/web user's, as ``docs/operating.md`` gives it: reads, writes, scripts,
pub/sub, transactions, connection commands and ``TIME``, nothing in ``@dangerous`` but ``INFO``; only
keys and channels under the queue's namespace (``saq:``). The default user (no
password) stays for replication, the sentinels and the harness's own checks.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

ACL_USER = "tasks"
ACL_PASSWORD = "harness-tasks-password"  # a throwaway server's, on an address of the harness's own
# docs/operating.md's line for a worker/web user, word for word.
ACL_RULES = ["on", f">{ACL_PASSWORD}", "resetkeys", "~saq:*", "resetchannels", "&saq:*", "-@all", "+@read",
             "+@write", "+@scripting", "+@pubsub", "+@transaction", "+@connection", "+time", "-@dangerous",
             "+info"]  # fmt: skip


@dataclass(frozen=True)
class Certificates:
    ca: Path
    cert: Path
    key: Path

    def server_args(self) -> list[str]:
        """redis-server (and sentinel) arguments: TLS for clients and for replication."""
        return ["--tls-cert-file", str(self.cert), "--tls-key-file", str(self.key), "--tls-ca-cert-file",
                str(self.ca), "--tls-auth-clients", "optional", "--tls-replication", "yes"]  # fmt: skip

    def client_options(self) -> dict:
        return {"ssl": True, "ssl_ca_certs": str(self.ca)}


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"openssl {args[0]}: {result.stderr.strip()}")


def make_certificates(directory: Path, address: str) -> Certificates:
    """A CA and a certificate for ``address``, valid for 2 days, in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
             "-subj", "/CN=harness test CA", cwd=directory)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=harness redis", cwd=directory)  # fmt: skip
    (directory / "san.ext").write_text(f"subjectAltName=IP:{address}\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.crt", "-days", "2", "-extfile", "san.ext", cwd=directory)  # fmt: skip
    return Certificates(directory / "ca.crt", directory / "server.crt", directory / "server.key")
