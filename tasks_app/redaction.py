"""Hiding secrets in what tasks_app prints: one helper for every Redis URL shown anywhere."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
SECRET_PARAMETERS = frozenset({"password", "pass", "pwd", "token", "auth", "sentinel_password"})


def redact_url(url: str | None) -> str:
    """``url`` with its password hidden, both in the userinfo and in ``?password=``.

    ``redis://:s3cret@host:6379/0?password=x`` -> ``redis://:***@host:6379/0?password=***``.
    A URL that does not parse is hidden whole, since it may still hold a secret.
    """
    if not url:
        return ""
    try:
        parts = urlsplit(url)
        if "," not in parts.netloc:  # redis+sentinel:// lists host:port pairs, which .port cannot read
            parts.port  # noqa: B018 - raises ValueError on a malformed netloc
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, has_password, _ = userinfo.partition(":")
        if has_password:
            netloc = f"{user}:{MASK}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if k.lower() in SECRET_PARAMETERS else v) for k, v in pairs], safe="*")
    if (netloc, query) == (parts.netloc, parts.query):
        return url  # nothing hidden: as given (urlunsplit would turn unix:///path into unix:/path)
    redacted = urlunsplit(parts._replace(netloc=netloc, query=query))
    if not netloc and url.startswith(f"{parts.scheme}://"):  # unix:///path: keep the empty authority
        redacted = f"{parts.scheme}://{redacted[len(parts.scheme) + 1 :]}"
    return redacted
