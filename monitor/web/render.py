"""HTML for the status pages: Jinja2 with autoescaping on for every template.

Model ids, endpoint types, owners and error messages come from remote servers, so
every value a template prints is escaped, attributes included; nothing upstream is
ever marked safe. The only markup that is not escaped is our own: the stylesheet
and the filter script in `static/`, inlined so a page (and the report file) works
offline with no other request. The Content-Security-Policy allows exactly those two
by their SHA-256 hashes and nothing else: no other script, style, frame or fetch.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from monitor.core.clock import rfc3339


def _static(name: str) -> str:
    return resources.files("monitor.web").joinpath("static", name).read_text(encoding="utf-8")


def _hash(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


CSS = _static("page.css")
SCRIPT = _static("filter.js")

# The header the listener sends; the pages also carry it as a <meta> for the report
# file, where frame-ancestors is not allowed (browsers ignore it there with a warning).
_POLICY = (
    "default-src 'none'; "
    f"style-src {_hash(CSS)}; "
    f"script-src {_hash(SCRIPT)}; "
    "img-src data:; "
    "form-action 'self'; "
    "base-uri 'none'"
)
CSP = f"{_POLICY}; frame-ancestors 'none'"
META_CSP = _POLICY


def short_time(moment: datetime | None) -> str:
    """`2026-11-26 10:00 UTC`: what people read; `rfc3339` goes in `datetime=`."""
    if moment is None:
        return "never"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def ago(moment: datetime | None, now: datetime) -> str:
    """ "3 min ago", "2 h ago", "5 days ago": how fresh a check is, at a glance."""
    if moment is None:
        return ""
    seconds = (now - moment).total_seconds()
    if seconds < 0:
        return "just now"
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {'day' if unit == 'days' and count == 1 else unit} ago"
    return "just now"


# Control characters (but tab and newlines) are not text in HTML; a model id may hold them.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _printable(value: Any) -> Any:
    """Every printed value passes here before it is escaped (Jinja's `finalize`)."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return _CONTROL.sub("\ufffd", value)
    return value


@functools.cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("monitor.web", "templates"),
        autoescape=True,  # every template, whatever its name
        finalize=_printable,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["rfc3339"] = lambda m: rfc3339(m) if m else ""
    env.filters["short"] = short_time
    env.filters["ago"] = ago
    # Our own two files from the package, never anything upstream: inlined as they are,
    # byte for byte, since the CSP hashes must match.
    env.globals.update(
        css=Markup(CSS),  # noqa: S704
        script=Markup(SCRIPT),  # noqa: S704
        csp=META_CSP,
    )
    return env


def render(template: str, **context: Any) -> str:
    """One page (or fragment) from `monitor/web/templates/`."""
    return environment().get_template(template).render(**context)
