"""Hiding secrets in what tasks_app prints: one helper for every Redis URL shown anywhere."""

from __future__ import annotations

from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
SECRET_PARAMETERS = frozenset({"password", "pass", "pwd", "token", "auth", "sentinel_password"})


def spilled_password(parts: SplitResult) -> bool:
    """Whether a split URL's password surely held an unencoded / ? # or @, now read as the URL's path, query or
    fragment: a fragment, an '@' in a redis:// or rediss:// path (a database number), or a query parameter's
    name with an '@' or '/' in it. (A unix:// path may hold an '@': a directory named ``job@2``.)"""
    names = [name for name, _ in parse_qsl(parts.query, keep_blank_values=True)]
    return (
        bool(parts.fragment)
        or ("@" in parts.path and parts.scheme in ("redis", "rediss"))
        or any("@" in name or "/" in name for name in names)
    )


def may_hold_password(parts: SplitResult) -> bool:
    """Whether anything after a split URL's host may be part of its password: ``spilled_password``, or an '@'
    anywhere in its query (``?password=p@ss`` is legal, but so is a spill the query's syntax happens to fit)."""
    return spilled_password(parts) or "@" in parts.query


def redact_url(url: str | None) -> str:
    """``url`` with its password hidden, both in the userinfo and in ``?password=``.

    ``redis://:s3cret@host:6379/0?password=x`` -> ``redis://:***@host:6379/0?password=***``.
    A URL that does not parse, or whose password may hold an unencoded / ? # @ (``may_hold_password``), is
    hidden whole, since it may still hold a secret.
    """
    if not url:
        return ""
    try:
        parts = urlsplit(url)
        if "," not in parts.netloc:  # redis+sentinel:// lists host:port pairs, which .port cannot read
            parts.port  # noqa: B018 - raises ValueError on a malformed netloc
    except ValueError:
        return MASK
    if may_hold_password(parts):
        return MASK  # where the password ends cannot be told
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
