"""Budgets as users meet them: the installed command against the simulator's usage route
and a real webhook receiver, on both backends. `check` from cron warns once per crossing,
again after a renewal and a new approach; `status` shows what is left."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

from monitor.events import payload_errors
from tests.support.cli_world import TOKEN_A, TOKEN_B, world_at

DAY = 86400
QUOTA = 500_000  # new-api quota units per dollar


def budget_payloads(receiver, seen: int) -> list[dict]:
    """What the webhook received since `seen` requests, budget events only, each valid."""
    bodies = [r.json() for r in receiver.received[seen:]]
    for body in bodies:
        assert payload_errors(body) == [], body
    return [b for b in bodies if b["type"] in ("token.expiring", "token.quota_low")]


def test_expiry_and_quota_warnings_from_cron_style_checks(tmp_path: Path, db_url: str) -> None:
    with world_at(tmp_path, db_url) as (gateway, receiver, cli):
        config = cli.config.read_text().replace(
            "[monitor]\n", '[monitor]\nbudget_interval = "0s"\n'
        )
        cli.config.write_text(config)
        gateway.set_usage(TOKEN_B, granted=100 * QUOTA, used=50 * QUOTA)
        cli("-q", "check")  # the baseline: nothing to say
        assert budget_payloads(receiver, 0) == []

        gateway.set_usage(TOKEN_A, expires_at=int(time.time()) + 6 * DAY)
        gateway.set_usage(TOKEN_B, used=95 * QUOTA)
        seen = len(receiver.received)
        done = cli("-q", "check")
        assert "team-a expires in 6 days" in done.stdout  # the stdout channel
        sent = budget_payloads(receiver, seen)
        assert sorted((b["type"], b["tokens"], b["budget"]["threshold"]) for b in sent) == [
            ("token.expiring", ["team-a"], "7d"),
            ("token.quota_low", ["team-b"], "10%"),
        ]
        low = next(b for b in sent if b["type"] == "token.quota_low")
        assert low["budget"]["remaining"] == "5" and low["budget"]["granted"] == "100"

        seen = len(receiver.received)
        for _ in range(2):
            assert cli("-q", "check").stdout == ""  # cron mails nothing: said once
        assert budget_payloads(receiver, seen) == []

        # Renewed for a year, then (a new approach) due in 5 days again; topped up.
        gateway.set_usage(TOKEN_A, expires_at=int(time.time()) + 365 * DAY)
        gateway.set_usage(TOKEN_B, granted=1000 * QUOTA)
        cli("-q", "check")
        gateway.set_usage(TOKEN_A, expires_at=int(time.time()) + 5 * DAY)
        gateway.set_usage(TOKEN_B, used=990 * QUOTA)
        seen = len(receiver.received)
        cli("-q", "check")
        again = budget_payloads(receiver, seen)
        assert sorted((b["type"], b["tokens"][0]) for b in again) == [
            ("token.expiring", "team-a"),
            ("token.quota_low", "team-b"),
        ]

        status = json.loads(cli("status", "--format", "json").stdout)
        budgets = {t["token"]: t["budget"] for t in status["tokens"]}
        assert budgets["team-b"]["remaining"] == "10" and budgets["team-b"]["unit"] == "USD"
        assert budgets["team-a"]["expires_at"].endswith("Z")
        rows = list(csv.DictReader(io.StringIO(cli("status", "--format", "csv").stdout)))
        assert {r["token"]: r["remaining"] for r in rows}["team-b"] == "$10.00 of $1000.00"
        table = cli("status").stdout
        assert "$10.00 of $1000.00" in table and "REMAINING" in table
        everything = table + json.dumps(status) + json.dumps([r.json() for r in receiver.received])
        assert TOKEN_A not in everything and TOKEN_B not in everything
