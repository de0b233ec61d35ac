"""`/changes.atom`: the timeline as an Atom 1.0 feed (RFC 4287) for feed readers.

Built with xml.etree so every string is escaped by the serializer, never by hand.
Entry ids are `urn:model-monitor:event:<event id>`: event ids are stable, so a reader
shows each event once however often it polls. Links are root-relative (`/changes...`):
RFC 4287 resolves them against the feed's own URL, which keeps working behind a reverse
proxy without trusting a Host header.

The feed's own id must be permanent and universally unique (RFC 4287 section 4.2.6):
the same for as long as this history exists, different from every other installation's.
It is a UUID derived (version 5) from the installation's UUID, which the database holds
(monitor.store.schema.Installation), and from the feed's filter (not its `limit`), so
`?source=a` and `?source=b` are two feeds. Not the host name, the listen address or the
database path: those change when a database moves, a host is renamed or a proxy is put
in front, and a reader would then see a new feed. Daemons sharing one database serve
one feed. A database without the row (its table emptied by hand) falls back to the
installation-independent `urn:model-monitor:changes...`.

Entry titles are short, for a reader's list: which models, which token and what kind of
error (`monitor.web.timeline.entry_title`); everything else is in the content.
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from urllib.parse import quote

from monitor import DISTRIBUTION, HOMEPAGE, __version__
from monitor.core.clock import rfc3339
from monitor.web.render import render
from monitor.web.timeline import TimelineEntry, TimelineView

ATOM = "http://www.w3.org/2005/Atom"
CONTENT_TYPE = "application/atom+xml; charset=utf-8"

# Characters XML 1.0 cannot carry at all, not even escaped; a model id may hold them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(value: str) -> str:
    return _NOT_XML.sub("\ufffd", value)


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: _text(v) for k, v in attrs.items()})
    if text is not None:
        element.text = _text(text)
    return element


def feed_id(view: TimelineView, installation: str | None = None) -> str:
    """`urn:uuid:...` from the installation's UUID and the filter; see the module's doc."""
    flt = view.filter
    parts = [
        f"{name}={quote(value, safe='')}"
        for name, value in (("source", flt.source), ("token", flt.token), ("type", flt.type))
        if value
    ]
    name = ":".join(["urn:model-monitor:changes", *parts])
    try:
        namespace = uuid.UUID(installation or "")
    except ValueError:
        return name
    return f"urn:uuid:{uuid.uuid5(namespace, name)}"


def entry_id(entry: TimelineEntry) -> str:
    return f"urn:model-monitor:event:{entry.id}"


def build_feed(view: TimelineView, installation: str | None = None) -> bytes:
    """The feed document, UTF-8 with an XML declaration; `installation` is the
    database's UUID (`feed_id`)."""
    flt = view.filter
    query = flt.query()
    suffix = f"?{query}" if query else ""
    title = "model-monitor changes"
    scope = [
        f"{k} {v}"
        for k, v in (("source", flt.source), ("token", flt.token), ("type", flt.type))
        if v
    ]
    if scope:
        title += f" ({', '.join(scope)})"
    # Unprefixed names under a default namespace declared on the root: what feed
    # readers expect to see, without a global ET.register_namespace.
    root = ET.Element("feed", xmlns=ATOM)
    _el(root, "id", feed_id(view, installation))
    _el(root, "title", title, type="text")
    _el(root, "updated", rfc3339(view.updated))
    author = _el(root, "author")
    _el(author, "name", "model-monitor")
    _el(root, "link", rel="self", type="application/atom+xml", href=f"/changes.atom{suffix}")
    _el(root, "link", rel="alternate", type="text/html", href=f"/changes{suffix}")
    _el(root, "generator", DISTRIBUTION, uri=HOMEPAGE, version=__version__)
    for entry in view.entries:
        item = _el(root, "entry")
        _el(item, "id", entry_id(entry))
        _el(item, "title", entry.title or entry.summary, type="text")
        _el(item, "updated", rfc3339(entry.occurred_at))
        _el(item, "published", rfc3339(entry.occurred_at))
        _el(item, "link", rel="alternate", type="text/html", href=f"/changes{suffix}#{entry.id}")
        _el(item, "category", term=entry.type)
        _el(item, "content", render("feed_entry.html.j2", entry=entry), type="html")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
