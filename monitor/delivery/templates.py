"""Rendering messages through Jinja2 templates shipped in `monitor/templates/`.

The environment is sandboxed: payload values come from remote servers, and a
template must never be able to reach into Python objects through them.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from jinja2 import PackageLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import SandboxedEnvironment


@cache
def environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        loader=PackageLoader("monitor", "templates"),
        autoescape=select_autoescape(["html", "htm", "xml"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["tokens"] = lambda names: ", ".join(names)
    return env


def render(name: str, payload: Mapping[str, Any]) -> str:
    return environment().get_template(name).render(event=payload)
