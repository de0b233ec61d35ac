"""The apprise channel: Discord, Teams, Telegram, ntfy and 100+ more through Apprise URLs.

An optional extra (`pip install 'llm-model-monitor[apprise]'`). Apprise only says whether
a notification went through, and retries nothing itself; our outbox owns retries, so
every failure here is retried on the usual schedule.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Mapping
from typing import Any, ClassVar

from monitor.config.model import ChannelConfig, Option, Secret
from monitor.core.printable import printable_data
from monitor.delivery.base import Channel, Message, SendResult
from monitor.delivery.templates import Templates


class AppriseChannel(Channel):
    OPTIONS: ClassVar = {
        "urls": Option("list[str]", help="Apprise URLs; they often hold credentials"),
        "url": Option("secret", help="one Apprise URL, from the environment or a file"),
        "title_prefix": Option("str", default="[model-monitor]", help="starts every title"),
        "timeout": Option("duration", default=30.0, help="for one notification to all URLs"),
    }

    def __init__(self, config: ChannelConfig, templates: Templates | None = None) -> None:
        super().__init__(config, templates)
        import apprise

        self._apprise = apprise.Apprise()
        urls = list(config.options.get("urls") or ())
        secret: Secret | None = config.options.get("url")
        if secret is not None:
            urls.append(secret.reveal())
        for url in urls:
            self._apprise.add(url)
        self._count = len(urls)
        self._prefix = config.options.get("title_prefix") or "[model-monitor]"
        self._timeout = float(config.options.get("timeout") or 30.0)

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> list[tuple[str, str]]:
        if importlib.util.find_spec("apprise") is None:
            return [("type", "needs the apprise extra: pip install 'llm-model-monitor[apprise]'")]
        if not options.get("urls") and options.get("url") is None:
            return [("urls", 'give at least one Apprise URL, e.g. urls = ["ntfy://topic"]')]
        import apprise

        problems = []
        for url in options.get("urls") or ():
            if not apprise.Apprise().add(url):
                # Never echo the URL: it may carry a token. Say which one by position.
                position = list(options["urls"]).index(url) + 1
                problems.append(("urls", f"entry {position} is not a URL Apprise understands"))
        return problems

    def render(self, payload: Mapping[str, Any]) -> tuple[str, str]:
        """Title and body."""
        shown = printable_data(payload)  # plain text: control characters shown, not obeyed
        title = f"{self._prefix} {shown.get('summary', '')}".strip()[:250]
        return title, self.templates.render("event.txt.j2", shown)

    def send(self, message: Message) -> SendResult:
        title, body = self.render(message.payload)
        done = threading.Event()
        outcome: list[bool] = []

        def notify() -> None:
            try:
                outcome.append(bool(self._apprise.notify(body=body, title=title)))
            except Exception:  # a plugin's bug is a failed attempt, retried like any other
                outcome.append(False)
            finally:
                done.set()

        # Apprise's plugins own their sockets, so the deadline is kept from outside: the
        # attempt is given up at `timeout`, and a late plugin finishes on its own thread.
        threading.Thread(target=notify, name="apprise-notify", daemon=True).start()
        if not done.wait(self._timeout):
            return SendResult(ok=False, error=f"timed out after {self._timeout:g}s")
        if outcome[0]:
            return SendResult.success()
        return SendResult(ok=False, error=f"apprise reported a failure (of {self._count} URL(s))")
