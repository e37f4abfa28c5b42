"""Hiding secrets in what tasks_app prints: one helper for every Redis URL shown anywhere."""

from __future__ import annotations

from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
SECRET_PARAMETERS = frozenset({"password", "pass", "pwd", "token", "auth", "sentinel_password"})


def spilled_password(parts: SplitResult) -> bool:
    """Whether a split URL's password may hold an unencoded / ? # or @, read as the URL's host, path, query
    or fragment: a fragment, an '@' in the path, or a query parameter's name with an '@' or '/' in it."""
    names = [name for name, _ in parse_qsl(parts.query, keep_blank_values=True)]
    return bool(parts.fragment) or "@" in parts.path or any("@" in name or "/" in name for name in names)


def redact_url(url: str | None) -> str:
    """``url`` with its password hidden, both in the userinfo and in ``?password=``.

    ``redis://:s3cret@host:6379/0?password=x`` -> ``redis://:***@host:6379/0?password=***``.
    A URL that does not parse, or whose password may hold an unencoded / ? # @ (a '#', or an '@' after the
    host), is hidden whole, since it may still hold a secret.
    """
    if not url:
        return ""
    try:
        parts = urlsplit(url)
        if "," not in parts.netloc:  # redis+sentinel:// lists host:port pairs, which .port cannot read
            parts.port  # noqa: B018 - raises ValueError on a malformed netloc
    except ValueError:
        return MASK
    if spilled_password(parts):
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
