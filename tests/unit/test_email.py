"""The email channel without a server: subjects, the text and HTML bodies of every event,
escaping in user templates, header text, and the channel's config keys. Delivery to a
real SMTP server is in tests/integration/test_email.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from monitor.config import ChannelConfig, ConfigError
from monitor.delivery import samples
from monitor.delivery.email import EmailChannel, header_text, subject
from monitor.delivery.templates import Templates
from monitor.runtime.catalogue import load as load_config
from tests.support.smtp_sink import email_channel

PASSWORD = "pw-Tr0ub4dor-and-3"  # must never show up in an error
SCRIPT = "<script>alert(1)</script>"


def test_subjects_say_what_happened() -> None:
    assert subject(samples.token_failing().to_payload()) == (
        "[model-monitor] aiberm: team-b failing: auth (HTTP 401)"
    )
    assert subject(samples.token_recovered().to_payload()) == (
        "[model-monitor] aiberm: team-b recovered"
    )
    assert subject(samples.sample_test("ml-mail").to_payload(), "[mm]") == (
        "[mm] test message for channel ml-mail"
    )
    assert subject(samples.models_changed(1, 0).to_payload(), "") == (
        "aiberm: 1 added, 1 endpoint types changed, 1 field changed"
    )
    long = samples.models_changed().to_payload()
    long["summary"] = "x" * 500
    assert len(subject(long)) <= 200 and subject(long).endswith("…")


def test_html_is_escaped_even_in_a_user_template(tmp_path: Path) -> None:
    """The shipped loader autoescapes *.html only; the channel must not depend on names."""
    (tmp_path / "email.html.j2").write_text("<p>{{ event.changes[0].model }}</p>")
    config = ChannelConfig(
        "m", "email", options={"smtp_host": "h", "from": "a@b.example", "to": ("c@d.example",)}
    )
    ch = EmailChannel(config, Templates(tmp_path))
    _, html = ch.render(samples.models_changed(model_id=SCRIPT).to_payload())
    assert html == "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>\n"


def test_every_sample_event_renders() -> None:
    ch = email_channel(25)  # rendering opens no connection
    for payload in samples.all_payloads():
        text, html = ch.render(payload)
        assert payload["summary"] in text
        assert html.startswith("<!DOCTYPE html>") and "</html>" in html
    no_types = samples.models_changed().to_payload()
    no_types["changes"] = [{"type": "added", "model": "m", "tokens": ["t"], "after": {}}]
    assert "+ m  (t)" in ch.render(no_types)[0]  # flavors without endpoint types


# -- configuration ---------------------------------------------------------------------


CONFIG = """
[[sources]]
name = "aiberm"
base_url = "https://aiberm.com/v1"

[[tokens]]
name = "team-a"
source = "aiberm"
token_env = "TEAM_A"

[[channels]]
name = "ml-mail"
type = "email"
{options}
"""


def load(tmp_path: Path, options: str) -> Any:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(options=options))
    return load_config(path, {"TEAM_A": "sk-a", "SMTP_PASSWORD": PASSWORD})


def test_config_defaults(tmp_path: Path) -> None:
    options = (
        load(
            tmp_path,
            'smtp_host = "smtp.example.com"\nfrom = "a@example.com"\nto = ["b@example.com"]',
        )
        .channels[0]
        .options
    )
    assert options["security"] == "starttls"
    assert options["timeout"] == 30.0
    assert options["subject_prefix"] == "[model-monitor]"
    ch = EmailChannel(ChannelConfig("ml-mail", "email", options=options))
    assert ch._port == 587
    assert (
        EmailChannel(ChannelConfig("m", "email", options={**options, "security": "ssl"}))._port
        == 465
    )


def test_config_problems_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(
            tmp_path,
            'smtp_host = "smtp://smtp.example.com"\nsecurity = "tls"\nsmtp_port = 70000\n'
            'username = "alerts"\nfrom = "not an address"\n'
            'to = ["ok@example.com", "a@b, c@d"]\nca_bundle = "ca.pem"',
        )
    text = str(info.value)
    for key in ("smtp_host", "security", "smtp_port", "password", "from", "to", "ca_bundle"):
        assert f"{key}:" in text or f"{key} " in text, (key, text)
    assert "starttls" in text and "username is set" in text
    with pytest.raises(ConfigError) as info:
        load(
            tmp_path,
            'smtp_host = "h"\nfrom = "a@example.com"\nto = []\npassword_env = "SMTP_PASSWORD"',
        )
    assert "is empty" in str(info.value) and "username" in str(info.value)
    assert PASSWORD not in str(info.value)


def test_header_text() -> None:
    assert header_text("a\r\nBcc: x@y") == "a Bcc: x@y"
    assert header_text("a\x00b\x1b[31m\u200bc\u2028d\te") == "ab[31mc d e"
    assert header_text("x" * 10, 5) == "xxxx…"
