"""Logging setup: text for people, JSON lines for log shippers, secrets scrubbed in both.

Secrets should never reach a log call in the first place; the scrubber is the second
line of defense, replacing any configured secret that slips into a line. It knows the
spellings a secret takes on its way into a log line (see `secret_forms`): a token without
its `sk-` prefix, a channel URL cut into the pieces urllib3 logs at `-v`
(`https://hooks.slack.com:443 "POST /services/T000/B000/XXXX HTTP/1.1" 200 2`: for Slack
the path is the credential), percent-encoded, JSON- or repr-escaped. For a URL only what
follows the host is masked, so a line still says where a request went.

Text lines are for people: after scrubbing, the message (and each line of a traceback)
goes through `printable`, so an ESC or newline from a remote server shows as `\\x1b` or
`\\n` instead of acting on the terminal or forging a log line. JSON lines scrub every field
before encoding, so a secret holding `"` or `\\` cannot slip past the mask as its escaped
spelling.

Under systemd (stderr connected to the journal, see `journal_stream`), every line starts
with its sd-daemon priority (`<3>` error, `<4>` warning, `<6>` info, `<7>` debug), which
journald strips and stores as the entry's PRIORITY, so `journalctl -p warning` filters;
text lines then carry no time of their own, as journald stamps each entry.

Structured fields: a log call passes them as `extra={"fields": {"source": ..., ...}}`.
Text lines ignore them (the message already says `source=gw token=team-a ...`); JSON lines
carry each as a top-level key beside `time`, `level`, `logger` and `message` (which it
never replaces), so a log shipper can filter on `outcome` without parsing the message.
Numbers and booleans stay JSON numbers and booleans; strings are scrubbed like the rest.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import sys
import threading
from collections.abc import Iterable, Mapping
from contextlib import suppress
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from monitor.core.printable import json_text, printable

if TYPE_CHECKING:
    from monitor.config import Config

_ROOT = "monitor"
MASK = "***"
SHORTEST = 4  # a whole secret shorter than this would mask ordinary words
SHORTEST_PART = 6  # the same for a piece of a URL (its path, query, a query value)
SEGMENT = 12  # a path segment this long, with a digit, is masked on its own (Slack's key)


def secret_forms(secret: str) -> dict[str, str]:
    """Each spelling of `secret` a log line could carry, mapped to what replaces it.

    A URL (`scheme://...`) is masked from its path on, host kept:
    `https://hooks.slack.com/***`; its pieces are masked wherever they appear: the path
    with and without the query (`/***`), the query with and without `?`, the user info,
    long query values and key-like path segments. For other schemes (Apprise URLs such as
    `tgram://bottoken/chat`) the host is a credential too, so all after `://` goes.
    Every form also counts percent-encoded, percent-decoded, JSON-escaped and
    repr-escaped.
    """
    forms: dict[str, str] = {}
    if len(secret) >= SHORTEST:
        forms[secret] = MASK
    if "://" in secret:
        with suppress(ValueError):  # not a URL after all: the whole value is masked above
            forms.update(_url_forms(secret))
    spelled: dict[str, str] = {}
    for form, mask in forms.items():
        for variant in _spellings(form):
            spelled.setdefault(variant, mask)
    return spelled


def _url_forms(url: str) -> dict[str, str]:
    parts = urlsplit(url)
    scheme, netloc = parts.scheme, parts.netloc
    userinfo, _, host = netloc.rpartition("@")
    forms: dict[str, str] = {}
    if scheme not in ("http", "https"):  # the host of an Apprise URL is often the token
        rest = url.split("://", 1)[1]
        forms[url] = f"{scheme}://{MASK}"
        forms[rest] = MASK
        if len(netloc) >= SHORTEST_PART:
            forms[netloc] = MASK
        host = ""
    path, query, fragment = parts.path, parts.query, parts.fragment
    tail = path + (f"?{query}" if query else "") + (f"#{fragment}" if fragment else "")
    if host and (userinfo or tail.strip("/")):
        shown = f"{scheme}://{MASK + '@' if userinfo else ''}{host}/{MASK}"
        forms.setdefault(url, shown)
        forms.setdefault(f"{scheme}://{netloc}{path}", shown)  # without the query
    pieces = [
        (tail, f"/{MASK}" if tail.startswith("/") else MASK),
        (path + (f"?{query}" if query else ""), f"/{MASK}" if path.startswith("/") else MASK),
        (path, f"/{MASK}" if path.startswith("/") else MASK),
        (f"?{query}", f"?{MASK}"),
        (query, MASK),
        (f"#{fragment}", f"#{MASK}"),
        (userinfo, MASK),
    ]
    pieces += [(value, MASK) for _, value in parse_qsl(query, keep_blank_values=True)]
    pieces += [(s, MASK) for s in path.split("/") if _credential_like(s)]
    for piece, mask in pieces:
        if len(piece) >= SHORTEST_PART and piece.strip("/?#"):
            forms.setdefault(piece, mask)
    password = userinfo.partition(":")[2]
    if len(password) >= SHORTEST:
        forms.setdefault(password, MASK)
    return forms


def _credential_like(segment: str) -> bool:
    """A path segment that looks like a key (long, with a digit), unlike `model-monitor`."""
    return len(segment) >= SEGMENT and any(c.isdigit() for c in segment)


def _spellings(form: str) -> set[str]:
    """`form` as it is, percent-encoded (as a URL and as a URL's parameter), percent-decoded,
    JSON-escaped, repr-escaped and made printable."""
    return {
        form,
        quote(form, safe="!#$%&'()*+,/:;=?@[]~"),  # as requests re-quotes a URL
        quote(form, safe=""),
        unquote(form),
        json_text(json.dumps(form, ensure_ascii=False))[1:-1],
        json.dumps(form)[1:-1],
        repr(form)[1:-1],
        printable(form),
    }


def config_secrets(config: Config | None) -> list[str]:
    """Every secret value a config holds: token values (also without `sk-`), the listener
    password, each channel's secret options (webhook and Slack URLs, webhook signing
    secrets, the SMTP password, an Apprise `url`) and any URL among its plain options
    (Apprise `urls`), and the password in the database URL."""
    if config is None:
        return []
    from monitor.sources.fetch import secret_forms as token_forms

    found: list[str] = []
    for token in config.tokens:
        found += token_forms(token.secret.reveal())
    if config.monitor.listen_password is not None:
        found.append(config.monitor.listen_password.reveal())
    for channel in config.channels:
        for value in channel.options.values():
            for item in value if isinstance(value, list | tuple) else (value,):
                if hasattr(item, "reveal"):
                    found += _secret_parts(item.reveal())
                elif isinstance(item, str) and "://" in item:
                    found.append(item)
    found += _database_password(config.monitor.database)
    return found


def _secret_parts(value: str) -> list[str]:
    """A secret option, and each of its space-separated values (webhook signing secrets
    rotate that way) with and without the `whsec_` prefix."""
    parts = value.split()
    return [value, *parts, *(p.removeprefix("whsec_") for p in parts if p.startswith("whsec_"))]


def _database_password(url: str | None) -> list[str]:
    if not url:
        return []
    try:
        password = urlsplit(url).password
    except ValueError:  # an unparsable URL fails where the database is opened, not here
        return []
    return [password, unquote(password)] if password else []


class _Scrubber:
    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = [s for s in secrets if s]
        self._masks: dict[str, str] = {}
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def __call__(self, text: str) -> str:
        if not self._secrets:
            return text
        pattern = self._compiled()
        return pattern.sub(lambda m: self._masks[m.group()], text)

    def _compiled(self) -> re.Pattern[str]:
        # Built at the first line logged, not at start: with a thousand tokens there are
        # thousands of spellings, and working them out and compiling them takes a
        # noticeable part of a second, which a quiet run that logs nothing should not pay.
        if self._pattern is None:
            with self._lock:
                if self._pattern is None:
                    masks: dict[str, str] = {}
                    for secret in self._secrets:
                        for form, mask in secret_forms(secret).items():
                            masks.setdefault(form, mask)
                    self._masks = masks
                    # Longest first: at any position the most complete spelling wins.
                    forms = sorted(masks, key=len, reverse=True)
                    alternatives = "|".join(map(re.escape, forms))
                    self._pattern = re.compile(alternatives or "(?!)")  # (?!): never matches
        return self._pattern


# sd-daemon(3) priorities by logging level, most severe first.
PRIORITIES = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))


def priority(levelno: int) -> int:
    """The syslog priority of a logging level: 2 critical, 3 error, 4 warning, 6 info,
    7 debug (5, notice, has no logging level)."""
    for level, value in PRIORITIES:
        if levelno >= level:
            return value
    return 7


def journal_stream(stream: IO[str], environ: Mapping[str, str] = os.environ) -> bool:
    """Whether `stream` writes to the systemd journal.

    systemd sets JOURNAL_STREAM to `device:inode` (decimal) of the stream it connected
    to the journal; as it documents, the variable alone proves nothing (a child process
    inherits it with its stderr redirected elsewhere), so the stream's own device and
    inode must match.
    """
    value = environ.get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        stat = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):  # no file behind it (a test's StringIO)
        return False
    return (stat.st_dev, stat.st_ino) == (int(device), int(inode))


class TextFormatter(logging.Formatter):
    """`time level logger: message`, scrubbed, with upstream control characters shown.

    For the journal (`journal=True`): `<priority>level logger: message`, each line of a
    traceback prefixed too (journald makes each line an entry of its own), no time.
    """

    def __init__(self, scrub: _Scrubber, *, journal: bool = False) -> None:
        fmt = "%(levelname)-7s %(name)s: %(message)s"
        super().__init__(fmt if journal else f"%(asctime)s {fmt}")
        self._scrub = scrub
        self._journal = journal

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = printable(self._scrub(record.message))
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:
        text = super().formatException(ei)
        return "\n".join(printable(self._scrub(line)) for line in text.split("\n"))

    def formatStack(self, stack_info: str) -> str:
        return "\n".join(printable(self._scrub(line)) for line in stack_info.split("\n"))

    def format(self, record: logging.LogRecord) -> str:
        text = self._scrub(super().format(record))
        if not self._journal:
            return text
        prefix = f"<{priority(record.levelno)}>"
        return "\n".join(prefix + line for line in text.split("\n"))


# The keys of every JSON line; a field of the same name never replaces one.
_JSON_KEYS = ("time", "level", "logger", "message", "exception", "stack")


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the record's `fields` as keys of their own; every
    field scrubbed before it is encoded. For the journal, prefixed with the priority."""

    def __init__(self, scrub: _Scrubber, *, journal: bool = False) -> None:
        super().__init__()
        self._scrub = scrub
        self._journal = journal

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        entry = {key: self._scrub(value) for key, value in entry.items()}
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            for key, value in fields.items():
                if str(key) not in _JSON_KEYS:
                    entry[str(key)] = self._value(value)
        # The encoded line is scrubbed once more: the JSON-escaped spellings are masks too.
        line = self._scrub(json_text(json.dumps(entry, ensure_ascii=False)))
        return f"<{priority(record.levelno)}>{line}" if self._journal else line

    def _value(self, value: Any) -> Any:
        """A field as JSON: numbers, booleans and null as they are (non-finite numbers,
        which JSON cannot carry, as their names), anything else as scrubbed text."""
        if value is None or isinstance(value, bool | int):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else str(value)
        return self._scrub(value if isinstance(value, str) else str(value))


def setup(level: int = logging.INFO, fmt: str = "text", secrets: Iterable[str] = ()) -> None:
    """Configure the `monitor` logger tree (and third-party warnings) on stderr,
    prefixed with priorities when stderr is the journal."""
    scrub = _Scrubber(secrets)
    journal = journal_stream(sys.stderr)
    handler = logging.StreamHandler(sys.stderr)
    formatter = JsonFormatter if fmt == "json" else TextFormatter
    handler.setFormatter(formatter(scrub, journal=journal))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger(_ROOT).setLevel(level)
    if level <= logging.DEBUG:
        # urllib3 at debug logs request lines, paths and queries included: a Slack
        # webhook's path is its credential, so the scrubber masks channel URLs piece by piece.
        logging.getLogger("urllib3").setLevel(logging.DEBUG)
    logging.getLogger("apscheduler").setLevel(max(level, logging.WARNING))
