"""Channel types by name. Adding a channel: one module, one line here, one test file, and its
cases in the contract tests (docs/architecture.md, "Adding a channel")."""

from __future__ import annotations

from typing import TextIO

from monitor.config.model import Config
from monitor.delivery import samples
from monitor.delivery.apprise import AppriseChannel
from monitor.delivery.base import Channel
from monitor.delivery.email import EmailChannel
from monitor.delivery.slack import SlackChannel
from monitor.delivery.stdout import StdoutChannel
from monitor.delivery.templates import Templates
from monitor.delivery.webhook import WebhookChannel

CHANNELS: dict[str, type[Channel]] = {
    "apprise": AppriseChannel,
    "email": EmailChannel,
    "slack": SlackChannel,
    "stdout": StdoutChannel,
    "webhook": WebhookChannel,
}


def build_channels(config: Config, *, console: TextIO | None = None) -> dict[str, Channel]:
    """One channel per configured `[[channels]]` entry, by name.

    `console` is the stream `stdout` channels print to; by default standard output (as
    it is at each send). The CLI hands over standard error when its standard output
    carries a JSON document.
    """
    templates = Templates(config.monitor.templates)
    channels: dict[str, Channel] = {}
    for c in config.channels:
        if CHANNELS[c.type] is StdoutChannel:
            channels[c.name] = StdoutChannel(c, templates, stream=console)
        else:
            channels[c.name] = CHANNELS[c.type](c, templates)
    return channels


def rendering_problems(config: Config) -> list[str]:
    """Render every sample event (and a digest of them) through every configured channel.

    Returns one line per failure, naming the channel and what broke, so a broken user
    template stops `config check`, `check` and `run` instead of a 3 a.m. alert. Without
    a user template directory there is nothing to check: the shipped templates render
    every sample in the test suite, and compiling them all would cost every command
    half a second.
    """
    if not config.monitor.templates:
        return []
    events = samples.all_payloads()
    payloads = [*events, samples.digest(events)]
    problems = []
    for name, channel in build_channels(config).items():
        for payload in payloads:
            try:
                channel.render(payload)
            except Exception as exc:  # any failure here would fail a real delivery
                where = f" ({config.monitor.templates})" if config.monitor.templates else ""
                problems.append(
                    f"channels {name!r}: cannot render a {payload['type']} event{where}: {exc}"
                )
                break
        channel.close()
    return problems
