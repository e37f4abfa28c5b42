"""A Page's path: a relative URL path of this site, validated and kept in one form.

The one form is lowercase, slash-separated parts of ``a-z 0-9 - _ . ~``, with no leading
slash and one trailing slash: ``about/license/``. Whatever an editor types that means the
same place (``/About/License``, ``about/license``) is normalised to it; anything that would
not stay on this site, or would shadow the site's own sections, is refused with a message
that says what to change.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

# First parts the site's own URLs use (pydotorg/urls.py; tests/site/test_pages.py keeps the two in step).
RESERVED_PREFIXES = ("admin", "api", "blogs", "events", "jobs", "search", "static")
MAX_LENGTH = 500

_PART = re.compile(r"[a-z0-9._~-]+")
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*:", re.IGNORECASE)
_NOT_ALLOWED = re.compile(r"[^a-z0-9._~/-]")


def normalise(value: str) -> str:
    """``value`` in the one form; raises ValidationError (code ``invalid_path``) naming the problem."""
    path = (value or "").strip()
    if not path or path == "/":
        raise _invalid("Enter a path such as about/license/. The home page is not a page that can be edited here.")
    if "\\" in path:
        raise _invalid("A path cannot contain a backslash (\\): browsers read it as a slash. Separate parts with /.")
    if _SCHEME.match(path):
        raise _invalid(
            "Enter a path on this site, such as about/license/, not a whole address with a scheme like https:."
        )
    if "//" in path:
        raise _invalid("A path cannot contain // (an empty part). Separate parts with a single /.")
    path = path.lower().strip("/")
    parts = path.split("/")
    if any(part in (".", "..") for part in parts):
        raise _invalid("A path cannot contain . or .. as a part. Write the path out in full.")
    bad = sorted(set(_NOT_ALLOWED.findall(path)))
    if bad or not all(_PART.fullmatch(part) for part in parts):
        shown = " ".join(repr(c) for c in bad[:10])
        raise _invalid(
            f"A path may use only letters a-z, digits and - _ . ~ between slashes; remove {shown}. "
            "Use - instead of spaces."
        )
    if parts[0] in RESERVED_PREFIXES:
        raise _invalid(
            f"Paths starting with {parts[0]}/ belong to the site itself. Choose another first part "
            f"(these are taken: {', '.join(p + '/' for p in RESERVED_PREFIXES)})."
        )
    path += "/"
    if len(path) > MAX_LENGTH:
        raise _invalid(f"A path can be at most {MAX_LENGTH} characters long (this one is {len(path)}).")
    return path


def _invalid(message: str) -> ValidationError:
    return ValidationError(message, code="invalid_path")
