"""Rendering messages through Jinja2 templates.

The package ships one template per channel format in `monitor/templates/`; a directory
named by `[monitor] templates` overrides any of them by file name. The environment is
sandboxed and undefined names are errors: payload values come from remote servers, and
a user template must fail at `config check`, not at 3 a.m.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    TemplateError,
    select_autoescape,
)
from jinja2.sandbox import SandboxedEnvironment

from monitor.core.money import money
from monitor.core.prices import describe_payload
from monitor.core.records import CallError


def mrkdwn(text: Any) -> str:
    """Escape for Slack mrkdwn: only &, < and > (HTML escaping is wrong there)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def dollar_text(amount: Any) -> str:
    """A payload's decimal text ("4.2") as money ("$4.20"); anything else as it is."""
    try:
        return money(Decimal(str(amount)))
    except (InvalidOperation, ValueError):
        return str(amount)


def call_error_text(change: Any) -> str:
    """An `unavailable` change's `error` as one line, "HTTP 503 model_not_found: ...";
    "" when it has none. Worded by `CallError.text`, so alerts say what the CLI says."""
    error = change.get("error") if isinstance(change, Mapping) else None
    if not isinstance(error, Mapping):
        return ""
    return CallError.from_json(error).text()


def join_tokens(names: Any) -> str:
    return ", ".join(str(n) for n in names)


class Templates:
    """The templates one config renders with: the user's directory first, then the package's."""

    def __init__(self, user_dir: str | Path | None = None) -> None:
        self.user_dir = Path(user_dir) if user_dir else None
        loaders: list[BaseLoader] = []
        if self.user_dir is not None:
            loaders.append(FileSystemLoader(self.user_dir))
        loaders.append(PackageLoader("monitor", "templates"))
        self.env = SandboxedEnvironment(
            loader=ChoiceLoader(loaders),
            # "page.html.j2" counts as HTML: escaping follows the name before ".j2".
            autoescape=select_autoescape(
                ["html", "htm", "xml", "html.j2", "htm.j2", "xml.j2"], default_for_string=False
            ),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self.env.filters["tokens"] = join_tokens
        self.env.filters["mrkdwn"] = mrkdwn
        self.env.filters["dollars"] = dollar_text
        self.env.filters["price_change"] = describe_payload
        self.env.filters["call_error"] = call_error_text

    def render(self, name: str, event: Mapping[str, Any], **context: Any) -> str:
        return self.env.get_template(name).render(event=event, **context)

    def overridden(self) -> list[str]:
        """Names of the user's templates that replace shipped ones (or add new ones)."""
        if self.user_dir is None or not self.user_dir.is_dir():
            return []
        return sorted(p.name for p in self.user_dir.iterdir() if p.suffix == ".j2")

    def check(self, samples: list[Mapping[str, Any]]) -> list[str]:
        """Compile every user template and render it with each sample event.

        Returns one problem per broken template, naming the file and the line.
        """
        problems: list[str] = []
        if self.user_dir is None:  # only the shipped templates: nothing overridden
            return problems
        for name in self.overridden():
            path = self.user_dir / name
            try:
                template = self.env.get_template(name)
                for sample in samples:
                    template.render(event=sample)
            except TemplateError as exc:
                line = getattr(exc, "lineno", None)
                where = f"{path}:{line}" if line else str(path)
                problems.append(f"{where}: template error: {exc}")
        return problems


@functools.cache
def default_templates() -> Templates:
    return Templates()


def render(name: str, payload: Mapping[str, Any]) -> str:
    """Render a shipped (or default-overridden) template; for views outside any channel."""
    return default_templates().render(name, payload)
