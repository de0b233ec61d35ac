"""Fetching a token's models list: one walk over HTTP, every way it can fail classified.

A check either returns the complete list (FetchOk) or says why not (FetchError); it
never raises for a remote failure and never returns a partial list. Three promises
shape the code:

- A deadline for the whole walk, by wall clock (`monitor.transport.deadline`): a
  socket timeout bounds each read, not the exchange, so a server dripping one byte a
  second would never time out; the watchdog shuts the walk's sockets at the deadline,
  whatever phase (connect, TLS, headers, body) the walk is in.
- A size cap, checked against Content-Length and again while streaming, so a huge or
  endless body costs at most `max_response_bytes` of memory.
- No token in any message, log line or exception: messages are built here from
  known parts and pass through `sanitize`, which also strips the token's value if a
  server echoed it back.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import logging
import math
import re
import socket
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from types import MappingProxyType
from typing import NoReturn
from urllib.parse import urlencode, urlsplit

import orjson
import requests
import urllib3.exceptions

from monitor.config.model import MonitorSettings, Secret, SourceConfig, TokenConfig
from monitor.core.records import (
    ErrorKind,
    FetchError,
    FetchOk,
    FetchResult,
    ModelRecord,
    ValueTooDeep,
)
from monitor.core.retry_after import retry_after
from monitor.sources import reordered
from monitor.sources.base import Flavor, InvalidResponse, Page, Request
from monitor.sources.caches import ParseCaches, page_key
from monitor.sources.registry import FLAVORS
from monitor.transport.connections import GET_HEADERS, POOLS
from monitor.transport.deadline import Deadline, within

logger = logging.getLogger("monitor.sources")

MESSAGE_LIMIT = 300
# Messages quote at most an error body (_ERROR_BODY_LIMIT); this bounds the clean-up work.
_SANITIZE_INPUT_LIMIT = 128 * 1024
_CHUNK = 64 * 1024
# An error body is read only to quote its message; more than this is not worth it.
_ERROR_BODY_LIMIT = 64 * 1024
_UNDECODED = object()
_HTML_TITLE = re.compile(rb"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)


def fetch_models(
    source: SourceConfig,
    token: TokenConfig,
    settings: MonitorSettings,
    caches: ParseCaches | None = None,
) -> FetchResult:
    """Fetch and normalize every page of the token's models list.

    The whole walk shares one deadline (`source.timeout`, else `settings.timeout`);
    each response is capped at `settings.max_response_bytes`. Safe to call from many
    threads: they share the source's connection pool (`monitor.transport.connections`)
    and `caches`, which spare parsing an answer seen before (None: nothing is kept).
    """
    caches = caches if caches is not None else ParseCaches()
    try:
        flavor_class = FLAVORS[source.flavor]
    except KeyError:
        raise ValueError(f"source {source.name!r}: unknown flavor {source.flavor!r}") from None
    walk = _Walk(
        flavor=flavor_class.create(FLAVORS, caches.records),
        caches=caches,
        source=source,
        token=token,
        timeout=source.timeout or settings.timeout,
        max_bytes=settings.max_response_bytes,
        max_connections=settings.concurrency,
    )
    return walk.run()


def sanitize(message: str, secrets: Iterable[str] = ()) -> str:
    """Make a remote-influenced message safe to store, print and send.

    Whitespace runs become one space, control and format characters (including bidi
    overrides) are removed, every secret is replaced by "***", and the result is cut
    to MESSAGE_LIMIT characters. Secrets are replaced both before and after the
    clean-up, so neither an interleaved control character nor a cut can expose one.
    """
    forms = sorted({s for s in secrets if s}, key=len, reverse=True)
    for secret in forms:
        message = message.replace(secret, "***")
    message = _clean(message[:_SANITIZE_INPUT_LIMIT])
    for secret in forms:
        message = message.replace(secret, "***").replace(_clean(secret) or secret, "***")
    if len(message) > MESSAGE_LIMIT:
        message = message[: MESSAGE_LIMIT - 1].rstrip() + "…"
    return message


def _clean(text: str) -> str:
    text = " ".join(text.split())
    if text.isprintable():
        return text
    return "".join(ch for ch in text if ch == " " or unicodedata.category(ch)[0] != "C")


def secret_forms(value: str) -> tuple[str, ...]:
    """The spellings of a token a server might echo: as sent, and without its `sk-` prefix.

    new-api stores keys without the prefix, so its messages could quote them that way.
    """
    forms = [value]
    if value.startswith("sk-") and len(value) >= 11:
        forms.append(value[3:])
    return tuple(forms)


# -- the walk -------------------------------------------------------------------------------


class _Failure(Exception):
    """Ends a walk early. Turned into a sanitized FetchError in exactly one place."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(kind, message)
        self.kind = kind
        self.message = message
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes
    complete: bool  # False when an error body was cut at _ERROR_BODY_LIMIT


class _Walk:
    """One check: every page of one token's list, within one deadline."""

    def __init__(
        self,
        *,
        flavor: Flavor,
        caches: ParseCaches,
        source: SourceConfig,
        token: TokenConfig,
        timeout: float,
        max_bytes: int,
        max_connections: int = 16,
    ) -> None:
        self.flavor = flavor
        self.pages = caches.pages
        self.source = source
        self.token = token
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.verify: bool | str = source.ca_bundle or source.verify_tls
        self.max_connections = max_connections
        self.secrets = secret_forms(token.secret.reveal())
        self.secret_bytes = tuple(f.encode("utf-8", "replace") for f in self.secrets if len(f) >= 4)
        # The value without `sk-` is inside every spelling: a body without it needs one scan.
        probe = min(self.secret_bytes, key=len, default=b"")
        self.echo_probe = probe if all(probe in f for f in self.secret_bytes) else b""
        self.started = time.monotonic()
        self.deadline: Deadline | None = None

    def run(self) -> FetchResult:
        try:
            with within(self.timeout) as self.deadline:
                models, status, size = self._pages()
                if self.deadline.expired:  # the watchdog may have cut a body short
                    raise self._timeout_failure(size, status)
        except _Failure as failure:
            error = FetchError(
                kind=failure.kind,
                message=sanitize(failure.message, self.secrets),
                status=failure.status,
                retry_after=failure.retry_after,
                duration=time.monotonic() - self.started,
            )
            logger.debug(
                "token %s on %s: check failed (%s): %s",
                self.token.name,
                self.source.name,
                error.kind,
                error.message,
            )
            return error
        duration = time.monotonic() - self.started
        logger.debug(
            "token %s on %s: %d models, %d bytes in %.3f s",
            self.token.name,
            self.source.name,
            len(models),
            size,
            duration,
        )
        return FetchOk(
            models=models,
            status=status,
            bytes_read=size,
            duration=duration,
            flavor=self.flavor.chosen,
        )

    def _pages(self) -> tuple[Mapping[str, ModelRecord], int, int]:
        request: Request | None = self.flavor.first_request(self.source.base_url, self.token.secret)
        models: dict[str, ModelRecord] = {}
        seen: set[object] = set()
        status = 0
        size = 0
        while request is not None:
            if len(seen) >= self.flavor.max_pages:
                raise _Failure(
                    ErrorKind.INVALID_RESPONSE,
                    f"the list did not end after {self.flavor.max_pages} pages",
                )
            if request.key in seen:
                raise _Failure(
                    ErrorKind.INVALID_RESPONSE, "pagination loops back to a page already read"
                )
            seen.add(request.key)
            reply = self._get(request)
            status = reply.status
            size += len(reply.body)
            if not 200 <= reply.status < 300:
                raise self._status_failure(reply)
            page = self._parse_once(reply, request)
            if not models and page.index is not None:  # a one-page list parsed before
                return page.index, status, size
            if not models and page.next is None:  # a one-page list: the common case
                models = {record.id: record for record in page.models}
                if len(models) == len(page.models):
                    break
                models = {}  # a duplicate: found and named below
            for record in page.models:
                if record.id in models:
                    raise _Failure(
                        ErrorKind.INVALID_RESPONSE, f"model id {record.id!r} appears on two pages"
                    )
                models[record.id] = record
            request = page.next
        return models, status, size

    # -- one request

    def _get(self, request: Request) -> _Reply:
        url = _display_url(request)
        remaining = self._remaining(0)
        started = time.monotonic()
        try:
            response = POOLS.get(
                url,
                {**GET_HEADERS, **request.wire_headers()},
                timeout=remaining,
                verify=self.verify,
                maxsize=self.max_connections,
            )
        except Exception as exc:  # every transport failure is classified
            self._log(url, None, 0, started)
            if self._expired():  # the watchdog cut the exchange: the cause is the clock
                host = urlsplit(request.url).hostname or request.url
                raise _Failure(
                    ErrorKind.TIMEOUT, f"no answer from {host} within {self.timeout:g} s"
                ) from None
            raise self._transport_failure(exc, request) from None
        size = 0
        complete = False
        try:
            limit = self.max_bytes
            if not 200 <= response.status < 300:
                limit = min(limit, _ERROR_BODY_LIMIT)
            else:
                self._check_declared_length(response)
            body, complete = self._read(response, limit)
            size = len(body)
            body = self._without_secrets(body)
        finally:
            self._log(url, response.status, size, started)
            if not complete:  # unread bytes: the connection cannot serve another request
                response.close()
            response.release_conn()
        return _Reply(response.status, response.headers, body, complete)

    def _without_secrets(self, body: bytes) -> bytes:
        """The body with any echo of the token (as an id, say) replaced by `***`, before
        anything is parsed, stored or sent."""
        if self.echo_probe and self.echo_probe not in body:
            return body
        for form in self.secret_bytes:
            if form in body:
                body = body.replace(form, b"***")
        return body

    def _check_declared_length(self, response: urllib3.BaseHTTPResponse) -> None:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise _Failure(
                ErrorKind.TOO_LARGE,
                f"the response declares {int(declared):,} bytes,"
                f" over the limit of {self.max_bytes:,}",
                response.status,
            )

    def _read(self, response: urllib3.BaseHTTPResponse, limit: int) -> tuple[bytes, bool]:
        """The decoded body, read against the deadline; (first `limit` bytes, False) if longer.

        A 2xx body over the limit is a failure; an error body is only quoted, so it is
        simply cut.
        """
        sock: socket.socket | None = getattr(response.connection, "sock", None)
        ok = 200 <= response.status < 300
        chunks: list[bytes] = []
        size = 0
        while True:
            remaining = self._remaining(size, response.status)
            # urllib3 hands the connection back as the last byte is read, and a full pool
            # closes it then: its socket has no timeout left to set, nor anything to read.
            if sock is not None and sock.fileno() != -1:
                sock.settimeout(remaining)
            try:
                chunk = response.read1(_CHUNK, decode_content=True)
            except Exception as exc:  # classified below
                self._body_failure(exc, size, response.status)
            if not chunk:
                if self._expired():  # the watchdog ended the body, not the server
                    raise self._timeout_failure(size, response.status)
                return b"".join(chunks), True
            size += len(chunk)
            if size > limit:
                if ok:
                    raise _Failure(
                        ErrorKind.TOO_LARGE,
                        f"the response is over the limit of {limit:,} bytes",
                        response.status,
                    )
                chunks.append(chunk)
                return b"".join(chunks)[:limit], False
            chunks.append(chunk)

    def _remaining(self, size: int, status: int | None = None) -> float:
        if self._expired():
            raise self._timeout_failure(size, status)
        assert self.deadline is not None
        return self.deadline.remaining()

    def _expired(self) -> bool:
        return self.deadline is not None and self.deadline.expired

    def _timeout_failure(self, size: int, status: int | None) -> _Failure:
        got = f" ({size:,} bytes received)" if size else ""
        return _Failure(
            ErrorKind.TIMEOUT, f"no complete answer within {self.timeout:g} s{got}", status
        )

    def _log(self, url: str, status: int | None, size: int, started: float) -> None:
        # The URL only: headers carry the token and are never logged.
        logger.debug(
            "GET %s -> %s, %d bytes in %.3f s",
            sanitize(url, self.secrets),
            status if status is not None else "no response",
            size,
            time.monotonic() - started,
        )

    # -- classification

    def _transport_failure(self, exc: BaseException, request: Request) -> _Failure:
        """The first rule of `_TRANSPORT_RULES` that matches anything `exc` wraps."""
        causes = list(_causes(exc))
        for matches, kind, template in _TRANSPORT_RULES:
            if matches(causes):
                return _Failure(
                    kind,
                    template.format(
                        host=urlsplit(request.url).hostname or request.url,
                        netloc=_netloc(request.url),
                        url=request.url,
                        timeout=self.timeout,
                        name=type(exc).__name__,
                        tls=_innermost_text(causes, urllib3.exceptions.SSLError)
                        or "handshake failed",
                    ),
                )
        raise exc  # not a transport failure: a bug, and it should be seen

    def _body_failure(self, exc: Exception, size: int, status: int) -> NoReturn:
        causes = list(_causes(exc))
        if self._expired() or any(
            isinstance(c, urllib3.exceptions.ReadTimeoutError | TimeoutError) for c in causes
        ):
            raise self._timeout_failure(size, status) from None
        if any(isinstance(c, urllib3.exceptions.DecodeError) for c in causes):
            raise _Failure(
                ErrorKind.INVALID_RESPONSE, "the response body could not be decompressed", status
            ) from None
        if any(isinstance(c, urllib3.exceptions.SSLError) for c in causes):
            raise _Failure(
                ErrorKind.NETWORK, "TLS error while reading the response", status
            ) from None
        if any(isinstance(c, urllib3.exceptions.HTTPError | OSError) for c in causes):
            raise _Failure(
                ErrorKind.NETWORK,
                f"the connection broke after {size:,} bytes of the response",
                status,
            ) from None
        raise exc

    def _status_failure(self, reply: _Reply) -> _Failure:
        status = reply.status
        kind = self._flavor_error_kind(reply) or _kind_of_status(status)
        return _Failure(kind, self._error_message(reply), status, retry_after(reply.headers))

    def _flavor_error_kind(self, reply: _Reply) -> ErrorKind | None:
        """The flavor's own classification (`Flavor.error_kind`), given the JSON body if any."""
        body: object = None
        if reply.complete and reply.body.strip() and not _looks_like_html(reply):
            try:
                body = json.loads(reply.body.decode("utf-8", errors="replace"))
            except (ValueError, RecursionError):
                body = None
        try:
            return self.flavor.error_kind(reply.status, body)
        except Exception as exc:  # a flavor bug must not crash the scheduler
            logger.error(
                "flavor %s could not classify an error from %s (%s); please report this",
                self.flavor.name,
                self.source.name,
                type(exc).__name__,
            )
            return None

    def _error_message(self, reply: _Reply) -> str:
        """ "HTTP 401: Invalid token (...)", "HTTP 502 with an HTML page (...)", "HTTP 429 Too
        Many Requests": the status, and what the body says when it says anything."""
        status = reply.status
        body = reply.body.strip()
        if 300 <= status < 400:
            location = reply.headers.get("Location", "")
            if location:
                return f"HTTP {status} redirect to {location}; set base_url to the final address"
        elif _looks_like_html(reply):
            return f"HTTP {status} with {_html_summary(body)}"
        elif body:
            text = body.decode("utf-8", errors="replace")
            if reply.complete:
                try:
                    decoded = json.loads(text)
                except (ValueError, RecursionError):
                    pass
                else:
                    message = self.flavor.error_message(decoded)
                    return f"HTTP {status}: {message or 'an error body without a message'}"
            return f"HTTP {status}: {text}"
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        return f"HTTP {status} {phrase}".rstrip()

    def _parse_once(self, reply: _Reply, request: Request) -> Page:
        """The parsed page, from the page cache when this exact body was parsed before (or, for
        a list sent in random order, the same items were: `monitor.sources.reordered`)."""
        list_key = self.flavor.unordered_list
        if list_key is not None and 200 <= reply.status < 300:
            return self._parse_reordered(reply, request, list_key)
        if not self.flavor.caches_pages():
            return self._parse(reply, request)
        key = page_key(self.flavor, request, reply.body)
        page = self.pages.get(key)
        if page is None:
            page = _indexed(self._parse(reply, request))
            # Stored without credentials: the key ignores headers, so a page may be
            # reused by another token, whose own headers go on its next request.
            self.pages.put(key, _with_headers(page, ()))
            return page
        return _with_headers(page, request.headers)

    def _parse_reordered(self, reply: _Reply, request: Request, list_key: str) -> Page:
        found = reordered.split(reply.body, list_key.encode())
        if found is None:  # not split exactly: parsed in full
            return self._parse(reply, request)
        key = found.key((self.flavor.name, request.key))
        page = self.pages.get(key) if key is not None else None
        if page is not None:
            return page
        decoded = self._decode(reply)
        page = self._parse(reply, request, decoded)
        if key is not None and isinstance(decoded, dict) and found.matches(decoded.get(list_key)):
            page = _indexed(page)
            self.pages.put(key, page)
        return page

    def _parse(self, reply: _Reply, request: Request, body: object = _UNDECODED) -> Page:
        if body is _UNDECODED:
            body = self._decode(reply)
        try:
            return self.flavor.parse(body, request)
        except (InvalidResponse, ValueTooDeep) as exc:
            raise _Failure(ErrorKind.INVALID_RESPONSE, str(exc), reply.status) from None
        except Exception as exc:  # a flavor bug must not crash the scheduler
            # Only the exception's type is logged: its text could quote the body.
            logger.error(
                "flavor %s could not parse a response from %s (%s); please report this",
                self.flavor.name,
                self.source.name,
                type(exc).__name__,
            )
            raise _Failure(
                ErrorKind.INVALID_RESPONSE,
                f"the models list could not be read ({type(exc).__name__})",
                reply.status,
            ) from None

    def _decode(self, reply: _Reply) -> object:
        """The decoded JSON body.

        orjson decodes a valid body in about half the time of the standard library.
        Whatever it refuses (a BOM, NaN, integers over 64 bits, deep nesting, lone
        surrogates, broken JSON) goes to the standard library, so the same documents
        are accepted as always, and a refusal is worded the same way; what the standard
        library lets through that no output could carry is made safe (`_safe_values`).
        """
        try:
            return orjson.loads(reply.body)
        except orjson.JSONDecodeError:
            pass
        status = reply.status
        if not reply.body.strip():
            raise _Failure(ErrorKind.INVALID_RESPONSE, f"HTTP {status} with an empty body", status)
        try:
            text = reply.body.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise _Failure(
                ErrorKind.INVALID_RESPONSE,
                f"the response is not valid UTF-8 (bad byte at offset {exc.start})",
                status,
            ) from None
        try:
            return _safe_values(json.loads(text))
        except RecursionError:
            raise _Failure(
                ErrorKind.INVALID_RESPONSE, "the response JSON is nested too deeply", status
            ) from None
        except ValueError as exc:
            if _looks_like_html(reply):
                message = f"HTTP {status} with {_html_summary(reply.body)} instead of JSON"
            else:
                message = f"the response is not JSON ({exc})"
            raise _Failure(ErrorKind.INVALID_RESPONSE, message, status) from None


def _with_headers(page: Page, headers: tuple[tuple[str, str | Secret], ...]) -> Page:
    if page.next is None:
        return page
    return Page(page.models, dataclasses.replace(page.next, headers=headers))


def _indexed(page: Page) -> Page:
    """A one-page list with its read-only `index`, when every id is unique."""
    if page.next is not None:
        return page
    index = {record.id: record for record in page.models}
    if len(index) != len(page.models):
        return page  # a duplicate id, reported by the walk
    return dataclasses.replace(page, index=MappingProxyType(index))


def _kind_of_status(status: int) -> ErrorKind:
    if status == 401:
        return ErrorKind.AUTH
    if status == 403:
        return ErrorKind.FORBIDDEN
    if status == 429:
        return ErrorKind.RATE_LIMITED
    if 500 <= status < 600:
        return ErrorKind.SERVER
    if 300 <= status < 500:
        return ErrorKind.CLIENT_ERROR
    return ErrorKind.INVALID_RESPONSE


def _display_url(request: Request) -> str:
    if not request.params:
        return request.url
    separator = "&" if "?" in request.url else "?"
    return f"{request.url}{separator}{urlencode(request.params)}"


def _netloc(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc.rpartition("@")[2] or url


Causes = list[BaseException]


def _any(*types: type[BaseException]) -> Callable[[Causes], bool]:
    return lambda causes: any(isinstance(c, types) for c in causes)


def _connect_timeout(causes: Causes) -> bool:
    # urllib3's NewConnectionError (refused, DNS) is a subclass of its ConnectTimeoutError.
    return _any(requests.exceptions.ConnectTimeout)(causes) or (
        _any(urllib3.exceptions.ConnectTimeoutError)(causes)
        and not _any(urllib3.exceptions.NewConnectionError)(causes)
    )


def _header_refused(causes: Causes) -> bool:
    # requests 2.32 says InvalidHeader; older ones let http.client's ValueError through.
    return any(isinstance(c, ValueError) and "header" in str(c) for c in causes) or _any(
        requests.exceptions.InvalidHeader, UnicodeEncodeError
    )(causes)


# How a failed exchange is told, first match wins (as httpx maps its exceptions): what
# the exception wraps, the kind of failure, and the words, with {host}, {netloc}, {url},
# {timeout}, {name} (the exception's type) and {tls} (the TLS library's reason). No
# message quotes an exception's own text where it could hold a header, so no token.
_TRANSPORT_RULES: tuple[tuple[Callable[[Causes], bool], ErrorKind, str], ...] = (
    (
        _any(requests.exceptions.SSLError, urllib3.exceptions.SSLError),
        ErrorKind.NETWORK,
        "TLS error talking to {host}: {tls}",
    ),
    # Before the timeouts, which NewConnectionError also is.
    (
        _any(urllib3.exceptions.NameResolutionError, socket.gaierror),
        ErrorKind.NETWORK,
        "DNS lookup failed for {host}",
    ),
    (_any(ConnectionRefusedError), ErrorKind.NETWORK, "connection refused by {netloc}"),
    (_connect_timeout, ErrorKind.TIMEOUT, "could not connect to {host} within {timeout:g} s"),
    (
        _any(requests.exceptions.Timeout, urllib3.exceptions.TimeoutError, TimeoutError),
        ErrorKind.TIMEOUT,
        "no answer from {host} within {timeout:g} s",
    ),
    (
        _any(requests.exceptions.ProxyError, urllib3.exceptions.ProxyError),
        ErrorKind.NETWORK,
        "the proxy failed to reach {host}",
    ),
    (
        _any(http.client.RemoteDisconnected),
        ErrorKind.NETWORK,
        "{host} closed the connection without answering",
    ),
    (_any(ConnectionResetError), ErrorKind.NETWORK, "connection reset by {host}"),
    (
        _header_refused,
        ErrorKind.CLIENT_ERROR,
        "the token cannot be sent in an HTTP header (spaces, line breaks or non-ASCII?)",
    ),
    (
        _any(
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
            urllib3.exceptions.LocationValueError,
            urllib3.exceptions.URLSchemeUnknown,
        ),
        ErrorKind.CLIENT_ERROR,
        "invalid URL {url}: check base_url",
    ),
    (
        _any(urllib3.exceptions.ProtocolError, ConnectionError, OSError),
        ErrorKind.NETWORK,
        "connection to {host} closed without a complete response",
    ),
    (
        _any(requests.exceptions.RequestException, urllib3.exceptions.HTTPError),
        ErrorKind.NETWORK,
        "request to {host} failed ({name})",
    ),
)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps: requests and urllib3 nest causes in args,
    in `reason` and in __cause__/__context__."""
    stack = [exc]
    seen: set[int] = set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for nested in (
            getattr(current, "reason", None),
            current.__cause__,
            current.__context__,
            *current.args,
        ):
            if isinstance(nested, BaseException):
                stack.append(nested)


def _innermost_text(causes: list[BaseException], wrapper: type[BaseException]) -> str:
    """A short reason from the deepest non-wrapper exception (e.g. "certificate verify failed")."""
    for cause in reversed(causes):
        reason = getattr(cause, "reason", None)
        if isinstance(reason, str) and reason:
            return reason.replace("_", " ").lower()
    for cause in reversed(causes):
        if not isinstance(cause, wrapper | requests.exceptions.RequestException) and str(cause):
            return str(cause)
    return ""


def _looks_like_html(reply: _Reply) -> bool:
    content_type = reply.headers.get("Content-Type", "").lower()
    if "html" in content_type:
        return True
    start = reply.body.lstrip()[:15].lower()
    return start.startswith((b"<!doctype", b"<html", b"<head", b"<body"))


def _html_summary(body: bytes) -> str:
    match = _HTML_TITLE.search(body)
    title = match.group(1).decode("utf-8", errors="replace").strip() if match else ""
    return f"an HTML page ({title})" if title else "an HTML page"


_NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


def _safe_values(document: object) -> object:
    """The decoded document with what no strict output can carry made safe, in place.

    The json module accepts NaN and Infinity (and 1e999 as infinity), and strings with
    lone surrogates; JSON output, UTF-8 storage and terminals cannot hold those. A
    non-finite number becomes its name as a string ("NaN", "Infinity"), so a change to
    or from it is still seen; a lone surrogate becomes U+FFFD. Iterative: the document
    may be nested as deep as the parser allows.
    """
    if not isinstance(document, dict | list):
        return _safe_scalar(document)
    stack: list[dict[str, object] | list[object]] = [document]
    while stack:
        container = stack.pop()
        items = container.items() if isinstance(container, dict) else enumerate(container)
        renamed: list[tuple[str, str]] = []
        for key, value in items:
            if isinstance(value, dict | list):
                stack.append(value)
            elif isinstance(value, str | float):
                safe = _safe_scalar(value)
                if safe is not value:
                    container[key] = safe  # type: ignore[index]
            if isinstance(key, str) and _safe_scalar(key) is not key:
                renamed.append((key, _safe_scalar(key)))  # type: ignore[arg-type]
        for old, new in renamed:
            assert isinstance(container, dict)
            container[new] = container.pop(old)
    return document


def _safe_scalar(value: object) -> object:
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else _NON_FINITE[value]
    if isinstance(value, str) and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            # Pairs written as two escapes are joined; lone halves become U+FFFD.
            return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value
