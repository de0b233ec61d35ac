"""Prices as users meet them: the installed command against the simulator's /api/pricing,
a real webhook receiver and a finance channel that takes price changes only, on both
backends."""

from __future__ import annotations

import json
from pathlib import Path

from monitor.events import payload_errors
from tests.support.cli_world import GPT5, MODELS, world_at

UNIT = "USD per 1M tokens (request: USD per request)"


def priced(ratio: str = "1.25") -> list[dict]:
    return [
        {"model_name": m["id"], "model_ratio": ratio if m["id"] == "model-0" else "0.5"}
        for m in MODELS
    ]


def test_price_changes_reach_the_finance_channel_once(tmp_path: Path, db_url: str) -> None:
    with world_at(tmp_path, db_url) as (gateway, receiver, cli):
        text = cli.config.read_text()
        text = text.replace("[monitor]\n", '[monitor]\nprices_interval = "0s"\n')
        # team-b pays the vip group's ratio; the webhook is the finance channel.
        text = text.replace(
            'token_env = "CONTRACT_TOKEN_B"', 'token_env = "CONTRACT_TOKEN_B"\ngroup = "vip"'
        )
        text = text.replace(
            'type = "webhook"',
            'type = "webhook"\nchanges = ["price_changed", "group_ratio_changed"]',
        )
        cli.config.write_text(text)
        gateway.set_pricing(priced(), {"default": 1, "vip": 2})
        cli("-q", "check")  # the baseline
        for _ in range(2):  # as many reads as the flap guard wants: still nothing
            cli("-q", "check")  # the same prices in another order
        assert receiver.received == []

        gateway.set_pricing(priced("2.5"), {"default": 1, "vip": 2})
        gateway.set_group("default", [*MODELS, GPT5])  # a model change, not for finance
        out = cli("check").stdout + cli("check").stdout  # the flap guard wants two reads
        assert "$ model-0 input $2.50 -> $5.00, output $2.50 -> $5.00 per 1M tokens (+100%)" in out

        (request,) = receiver.received
        payload = request.json()
        assert payload_errors(payload) == []
        assert {c["type"] for c in payload["changes"]} == {"price_changed"}
        by_group = {c["group"]: c for c in payload["changes"]}
        assert by_group[None] == {
            "type": "price_changed",
            "model": "model-0",
            "tokens": ["team-a"],
            "group": None,
            "before": {"input": "2.5", "output": "2.5"},
            "after": {"input": "5", "output": "5"},
            "unit": UNIT,
        }
        assert (by_group["vip"]["before"], by_group["vip"]["after"]) == (
            {"input": "5", "output": "5"},
            {"input": "10", "output": "10"},
        )

        gateway.hide_pricing(403)
        status = json.loads(cli("status", "--format", "json").stdout)
        assert status["prices"][0]["available"] is True  # not read again yet: 0s, next check
        cli("-q", "check")
        cli("-q", "check")
        status = json.loads(cli("status", "--format", "json").stdout)
        (gw,) = status["prices"]
        assert gw["available"] is False and "HTTP 403" in gw["message"]
        assert "prices unavailable" in cli("status").stdout
        gateway.hide_pricing(None)
        cli("-q", "check")
        cli("-q", "check")
        assert len(receiver.received) == 1  # hidden and back: no report

        gateway.set_pricing(priced("2.5"), {"default": 1, "vip": "2.5"})
        cli("-q", "check")
        cli("-q", "check")
        assert len(receiver.received) == 2
        ratio = receiver.received[1].json()
        assert payload_errors(ratio) == []
        assert ratio["changes"] == [
            {
                "type": "group_ratio_changed",
                "tokens": ["team-b"],
                "group": "vip",
                "before": "2",
                "after": "2.5",
            }
        ]
        assert ratio["summary"] == "1 group ratio changed on gw"

        table = json.loads(cli("prices", "--format", "json").stdout)
        vip = [r for r in table if r["group"] == "vip" and r["model"] == "model-0"]
        assert vip == [
            {
                "source": "gw",
                "group": "vip",
                "model": "model-0",
                "input": "12.5",
                "output": "12.5",
                "cache_input": None,
                "request": None,
            }
        ]
        assert "model-0" in cli("prices", "--token", "team-b").stdout
        assert (
            json.loads(cli("prices", "--token", "team-a", "--format", "json").stdout)[0]["group"]
            is None
        )


def test_a_group_the_gateway_does_not_price_is_said_not_guessed(
    tmp_path: Path, sqlite_url: str
) -> None:
    with world_at(tmp_path, sqlite_url) as (gateway, _, cli):
        text = cli.config.read_text().replace("[monitor]\n", '[monitor]\nprices_interval = "0s"\n')
        text = text.replace(
            'token_env = "CONTRACT_TOKEN_B"', 'token_env = "CONTRACT_TOKEN_B"\ngroup = "nowhere"'
        )
        cli.config.write_text(text)
        gateway.set_pricing(priced(), {"default": 1})
        cli("-q", "check")
        done = cli("prices", "--token", "team-b")
        assert "no ratio for group nowhere" in done.stderr
        assert "model-0" not in done.stdout  # no price is made up for it
        assert "model-0" in cli("prices", "--token", "team-a").stdout
