"""The Slack channel: Block Kit messages posted to an incoming webhook.

The look lives in the `slack.json.j2` template (users override it by file name); this
module owns what a template cannot be trusted with: Slack's size limits, applied to
whatever the template produced. A long section is cut at a line boundary and ends with
"… and N more"; a message still too big for one post (a digest of many events) is split
into numbered parts, each a valid message of its own. Nothing is ever rejected for size.

Slack answers a good post with HTTP 200 and the body `ok`; anything else is a failure.
A webhook whose channel is gone (404 `channel_not_found`/`no_service`, 410
`channel_is_archived`) disables the channel rather than filling the dead-letter queue.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, ClassVar
from urllib.parse import urlsplit

from jinja2 import TemplateError

from monitor.config.model import ChannelConfig, Option, Secret
from monitor.core.printable import printable_data
from monitor.delivery.base import Channel, Message, SendResult
from monitor.delivery.post import USER_AGENT, Reply, classify, delivery_session, post
from monitor.delivery.templates import Templates, default_templates, mrkdwn

TEMPLATE = "slack.json.j2"

# Slack's documented limits for Block Kit messages and their parts.
MAX_BLOCKS = 50
MAX_HEADER = 150
MAX_SECTION = 3000
MAX_FIELD = 2000  # section fields and context elements
MAX_ELEMENTS = 10  # fields per section, elements per context
MAX_TEXT = 40_000
# Slack may refuse "about 13,000" characters of block text: stay clear of "about".
MAX_BLOCK_TEXT = 12_000
# Shrinking sections below this to avoid a split would gut them: split instead.
MIN_SECTION = 1000
# A trailing context block up to this size is repeated in every part of a split.
MAX_REPEATED_CONTEXT = 1000

# 404 bodies that mean the webhook or its channel no longer exists.
GONE = frozenset({"channel_not_found", "no_service", "no_team", "team_disabled"})
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

Block = dict[str, Any]
SlackMessage = dict[str, Any]


class SlackRenderError(ValueError):
    """The template failed or produced something that is not a Slack message."""


# -- Rendering (pure: no sockets, testable on its own) ---------------------------------


def render_messages(
    payload: Mapping[str, Any], templates: Templates | None = None
) -> list[SlackMessage]:
    """The Slack messages for one event or digest payload, each within Slack's limits.

    Usually one; several (numbered "(k/n)") only when even collapsed content cannot
    fit one message. Raises SlackRenderError for a broken template.
    """
    templates = templates or default_templates()
    try:
        raw = templates.render(TEMPLATE, printable_data(payload))
    except (TemplateError, TypeError, ValueError) as exc:  # a user template's bug
        raise SlackRenderError(f"template {TEMPLATE}: {exc}") from exc
    return fit(parse_message(raw))


def parse_message(raw: str) -> SlackMessage:
    """Check the template's output has the shape of a Slack message."""
    try:
        message = json.loads(raw)
    except ValueError as exc:
        raise SlackRenderError(f"template {TEMPLATE} did not produce JSON: {exc}") from exc
    if not isinstance(message, dict):
        raise SlackRenderError(f"template {TEMPLATE} must produce a JSON object")
    blocks = message.get("blocks", [])
    if not isinstance(blocks, list) or not all(
        isinstance(b, dict) and isinstance(b.get("type"), str) for b in blocks
    ):
        raise SlackRenderError(f'template {TEMPLATE}: "blocks" must be a list of blocks')
    if not isinstance(message.get("text", ""), str):
        raise SlackRenderError(f'template {TEMPLATE}: "text" must be a string')
    return message


def fit(message: SlackMessage) -> list[SlackMessage]:
    """Enforce every limit on one rendered message; split it if it cannot fit."""
    blocks = [b for b in (limit_block(b) for b in message.get("blocks", [])) if b is not None]
    text = message.get("text", "").strip() or _first_text(blocks)
    if not text:
        raise SlackRenderError(f"template {TEMPLATE} produced an empty message")
    text, rest = clip(text, MAX_TEXT), _without(message, "text", "blocks")
    if not blocks:  # a text-only message
        return [{"text": text, **rest}]
    message = {"text": text, "blocks": blocks, **rest}
    if len(blocks) <= MAX_BLOCKS:
        blocks = shrink_sections(blocks, MAX_BLOCK_TEXT)
        if block_text(blocks) <= MAX_BLOCK_TEXT:
            return [{**message, "blocks": blocks}]
    return split(message)


def limit_block(block: Block) -> Block | None:
    """One block within its own limits; None for a block Slack would refuse as empty."""
    kind = block["type"]
    if kind == "header":
        text = _text_of(block).strip()
        return _with_text(block, clip(text, MAX_HEADER)) if text else None
    if kind == "section":
        fields = [
            {**f, "text": clip(f["text"], MAX_FIELD)}
            for f in block.get("fields", [])[:MAX_ELEMENTS]
            if isinstance(f, dict) and isinstance(f.get("text"), str) and f["text"].strip()
        ]
        out = {**block, "fields": fields} if fields else _without(block, "fields")
        text = _text_of(block)
        if text.strip():
            return _with_text(out, collapse(text, MAX_SECTION))
        return _without(out, "text") if fields or "accessory" in block else None
    if kind == "context":
        elements = [
            {**e, "text": clip(e["text"], MAX_FIELD)} if isinstance(e.get("text"), str) else e
            for e in block.get("elements", [])
            if _shows_something(e)
        ][:MAX_ELEMENTS]
        return {**block, "elements": elements} if elements else None
    return block  # dividers, images, actions...: counted, passed through


def _shows_something(element: Any) -> bool:
    if not isinstance(element, dict):
        return False
    text = element.get("text")
    return bool(text.strip()) if isinstance(text, str) else element.get("type") == "image"


def collapse(text: str, limit: int) -> str:
    """`text` within `limit`, cut at a line boundary with "… and N more" (N lines dropped).

    The shipped template writes one line per model, so N counts models.
    """
    if len(text) <= limit:
        return text
    lines = text.split("\n")
    # left[i]: non-blank lines from i on, i.e. what "N more" counts if we stop before i.
    left = [0] * (len(lines) + 1)
    for i in range(len(lines) - 1, -1, -1):
        left[i] = left[i + 1] + (1 if lines[i].strip() else 0)
    size = -1  # length of the kept lines joined by newlines
    kept = 0
    while kept < len(lines):
        more = _more_line(left[kept + 1])
        if size + 1 + len(lines[kept]) + (len(more) + 1 if more else 0) > limit:
            break
        size += 1 + len(lines[kept])
        kept += 1
    if kept == 0:  # one line longer than the whole limit: cut the line itself
        more = _more_line(left[1])
        head = [clip(lines[0], limit - (len(more) + 1 if more else 0))]
    else:
        more = _more_line(left[kept])
        head = lines[:kept]
    return "\n".join([*head, more] if more else head)


def _more_line(n: int) -> str:
    return f"… and {n} more" if n else ""


def clip(text: str, limit: int) -> str:
    """`text` within `limit` characters, marked with "…" when cut.

    Backs off a half-written mrkdwn entity (`&am`) so the cut never shows garbage.
    """
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 1, 0)]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:] and len(cut) - amp < 6:
        cut = cut[:amp]
    return cut + "…"


def shrink_sections(blocks: list[Block], budget: int) -> list[Block]:
    """Collapse the longest sections evenly until the blocks fit `budget`.

    Water-filling: every section keeps up to a common length, so one huge list
    cannot push the small ones out. Left alone when that length would fall below
    MIN_SECTION: splitting into parts then shows more.
    """
    total = block_text(blocks)
    if total <= budget:
        return blocks
    sections = [i for i, b in enumerate(blocks) if b["type"] == "section" and _text_of(b)]
    lengths = sorted(len(_text_of(blocks[i])) for i in sections)
    room = budget - (total - sum(lengths))
    level = _water_level(lengths, room)
    if level < MIN_SECTION:
        return blocks
    out = list(blocks)
    for i in sections:
        out[i] = _with_text(out[i], collapse(_text_of(out[i]), level))
    return out


def _water_level(lengths: list[int], room: int) -> int:
    """The largest common cap on sorted `lengths` whose capped sum fits `room`."""
    for i, length in enumerate(lengths):
        share = room // (len(lengths) - i)
        if length > share:
            return share
        room -= length
    return max(lengths, default=0)


def split(message: SlackMessage) -> list[SlackMessage]:
    """Several messages, each within every limit, together holding all blocks in order.

    The leading header (numbered "(k/n)") and a short trailing context block are
    repeated in every part, so each part reads on its own.
    """
    blocks: list[Block] = message["blocks"]
    head = blocks[0] if blocks and blocks[0]["type"] == "header" else None
    body = blocks[1:] if head else list(blocks)
    tail = body[-1] if body and body[-1]["type"] == "context" else None
    if tail is not None and block_text([tail]) <= MAX_REPEATED_CONTEXT and len(body) > 1:
        body = body[:-1]
    else:
        tail = None
    extra = [tail] if tail else []
    # Room for the numbered header (or a numbering context block) and the tail.
    max_blocks = MAX_BLOCKS - 1 - len(extra)
    max_chars = MAX_BLOCK_TEXT - MAX_HEADER - block_text(extra)
    chunks = _pack(body, max_blocks, max_chars)
    parts = []
    for k, chunk in enumerate(chunks, 1):
        mark = f"({k}/{len(chunks)})"
        text = _number_text(message["text"], mark)
        parts.append({**message, "text": text, "blocks": [_numbered(head, mark), *chunk, *extra]})
    return parts


def _pack(body: list[Block], max_blocks: int, max_chars: int) -> list[list[Block]]:
    chunks: list[list[Block]] = [[]]
    size = 0
    for block in body:
        chars = block_text([block])
        if chunks[-1] and (len(chunks[-1]) >= max_blocks or size + chars > max_chars):
            chunks.append([])
            size = 0
        chunks[-1].append(block)
        size += chars
    return chunks


def _numbered(head: Block | None, mark: str) -> Block:
    if head is None:
        return {"type": "context", "elements": [{"type": "mrkdwn", "text": f"part {mark}"}]}
    return _with_text(head, clip(_text_of(head), MAX_HEADER - len(mark) - 1) + " " + mark)


def _number_text(text: str, mark: str) -> str:
    first, newline, rest = text.partition("\n")
    return clip(f"{first} {mark}{newline}{rest}", MAX_TEXT)


def block_text(blocks: list[Block]) -> int:
    """Characters of text in blocks, the measure of Slack's total-size limit."""
    return sum(_strings_under_text(b) for b in blocks)


def _strings_under_text(node: Any) -> int:
    if isinstance(node, dict):
        return sum(
            len(v) if k == "text" and isinstance(v, str) else _strings_under_text(v)
            for k, v in node.items()
        )
    if isinstance(node, list):
        return sum(_strings_under_text(v) for v in node)
    return 0


def _text_of(block: Block) -> str:
    text = block.get("text")
    if isinstance(text, dict) and isinstance(text.get("text"), str):
        return text["text"]
    return ""


def _with_text(block: Block, text: str) -> Block:
    return {**block, "text": {**block.get("text", {"type": "mrkdwn"}), "text": text}}


def _without(block: Block, *keys: str) -> Block:
    return {k: v for k, v in block.items() if k not in keys}


def _first_text(blocks: list[Block]) -> str:
    """A fallback from the blocks, for templates that leave `text` out."""
    for block in blocks:
        text = _text_of(block).strip()
        if text:
            # `text` is read as mrkdwn: a plain_text header must not turn into a mention.
            return mrkdwn(text) if block["text"].get("type") == "plain_text" else text
    return ""


# -- Sending -----------------------------------------------------------------------------


def classify_slack(reply: Reply) -> SendResult:
    """Slack's meaning of an answer: only 200 `ok` is success."""
    status = reply.status
    if 200 <= status < 300:
        body = reply.body[:200].decode("utf-8", "replace").strip()
        if status == 200 and body == "ok":
            return SendResult.success(status)
        shown = " ".join(body.split()) or "an empty body"
        return SendResult(ok=False, status=status, error=f"HTTP {status} with {shown}, not ok")
    result = classify(reply)
    code = reply.body[:100].decode("utf-8", "replace").strip()
    if (status == 404 and code in GONE) or status == 410:
        return replace(result, permanent=True, disable=True)
    return result


class SlackChannel(Channel):
    """Posts each event (or digest) to a Slack incoming webhook.

    A payload that splits into parts is sent part by part, MIN_INTERVAL apart. If a
    part fails, the delivery fails and the dispatcher retries it whole; this channel
    remembers (in memory) which parts of that delivery already went out and resumes
    after them, so a retry in the same process sends no duplicates. After a restart,
    or if the rendering changed, it starts over: earlier parts may then arrive twice
    (at-least-once, like every delivery).
    """

    OPTIONS: ClassVar = {
        "url": Option(
            "secret", required=True, help="the incoming webhook URL (https://hooks.slack.com/...)"
        ),
        "timeout": Option("duration", default=10.0, help="for the whole request and answer"),
    }
    MIN_INTERVAL: ClassVar[float] = 1.0  # Slack: about one message per second per webhook
    REMEMBERED = 256  # deliveries whose sent parts are remembered

    def __init__(
        self,
        config: ChannelConfig,
        templates: Templates | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(config, templates)
        url: Secret = config.options["url"]
        self._url = url.reveal()
        self._timeout = float(config.options.get("timeout") or 10.0)
        self._session = delivery_session()
        self._sleep = sleep
        self._clock = clock
        self._last_post = -math.inf
        # One post at a time per webhook: keeps the pace, and a Session is not thread-safe.
        self._lock = threading.Lock()
        self._progress: OrderedDict[str, tuple[str, int]] = OrderedDict()

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> list[tuple[str, str]]:
        url = options.get("url")
        if url is None:
            return []
        # Never echo the URL: it is the webhook's only credential.
        try:
            parts = urlsplit(url.reveal())
            scheme, host = parts.scheme, parts.hostname
        except ValueError:
            scheme, host = "", None
        if (scheme == "https" and host) or (scheme == "http" and host in LOCAL_HOSTS):
            return []
        return [("url", "must be an https:// URL (http:// only to 127.0.0.1 or localhost)")]

    def render(self, payload: Mapping[str, Any]) -> list[SlackMessage]:
        return render_messages(payload, self.templates)

    def send(self, message: Message) -> SendResult:
        try:
            parts = self.render(message.payload)
        except SlackRenderError as exc:
            return SendResult(ok=False, error=str(exc), permanent=True)
        with self._lock:
            return self._send_parts(message.delivery_id, [_body(part) for part in parts])

    def _send_parts(self, delivery_id: str, bodies: list[bytes]) -> SendResult:
        """Post the parts in order, resuming after those a failed attempt already sent."""
        key = hashlib.sha256(b"\n".join(bodies)).hexdigest()  # same rendering, same parts
        for k in range(self._resume_point(delivery_id, key), len(bodies)):
            result = self._post(bodies[k])
            if not result.ok:
                self._remember(delivery_id, key, k)
                if len(bodies) > 1:
                    result = replace(result, error=f"part {k + 1}/{len(bodies)}: {result.error}")
                return result
        self._progress.pop(delivery_id, None)
        return SendResult.success(200)

    def _resume_point(self, delivery_id: str, key: str) -> int:
        saved_key, done = self._progress.get(delivery_id, (key, 0))
        return done if saved_key == key else 0

    def _remember(self, delivery_id: str, key: str, done: int) -> None:
        self._progress[delivery_id] = (key, done)
        self._progress.move_to_end(delivery_id)
        while len(self._progress) > self.REMEMBERED:
            self._progress.popitem(last=False)

    def _post(self, body: bytes) -> SendResult:
        wait = self._last_post + self.MIN_INTERVAL - self._clock()
        if wait > 0:
            self._sleep(wait)
        headers = {"content-type": "application/json; charset=utf-8", "user-agent": USER_AGENT}
        try:
            reply = post(self._session, self._url, body, headers, self._timeout)
        finally:
            self._last_post = self._clock()
        return classify_slack(reply) if isinstance(reply, Reply) else reply

    def close(self) -> None:
        self._session.close()


def _body(message: SlackMessage) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
