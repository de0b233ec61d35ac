"""`model-monitor demo`: the whole pipeline on loopback, with nothing to configure.

A simulated new-api gateway serves two tokens; between cycles the demo changes what
they may use, lists a model no channel serves (probes find it out), brings a token's
expiry near, spends most of its quota, doubles a price, expires the other token and
renews it. Detection, the outbox and both first channels (stdout and a signed webhook)
run exactly as in production.
"""

from __future__ import annotations

import base64
import json
import secrets
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import click

from monitor.config import ChannelConfig, Config
from monitor.delivery.outbox import Dispatcher
from monitor.delivery.registry import build_channels
from monitor.events.grouping import describe_error
from monitor.runtime.cycle import Checker, CheckReport
from monitor.sim import GatewaySimulator, WebhookReceiver, make_model
from monitor.sim.config import sim_config, webhook_channel
from monitor.store.database import open_database

BASE_MODELS = [
    make_model("gpt-4o", ("openai",)),
    make_model("gpt-4o-mini", ("openai",)),
    make_model("gpt-3.5-turbo", ("openai",)),
    make_model("claude-sonnet-4-5", ("anthropic", "openai"), owned_by="claude"),
    make_model("gemini-2.5-pro", ("gemini", "openai"), owned_by="google gemini"),
    make_model("text-embedding-3-small", ("embeddings",)),
]


def _demo_config(base_url: str, webhook_url: str, alpha: str, beta: str) -> Config:
    config = sim_config(
        base_url,
        {"team-alpha": alpha, "team-beta": beta},
        source="demo-gateway",
        channels=[
            ChannelConfig("terminal", "stdout"),
            webhook_channel(
                "audit-hook",
                webhook_url,
                secret="whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(),
            ),
        ],
        refetch_delay=0.2,
        retry_schedule=(0.5, 1.0, 2.0),
        budget_interval=0.0,  # every cycle, to show the warnings; the default is 6 h
        prices_interval=0.0,  # likewise; the default is 1 h
    )
    # Probes are off by default (each is a billed call); here at once, and an unavailable
    # model is probed again every cycle.
    source = replace(config.sources[0], probe=True, probe_delay=0.0, probe_recheck=0.0)
    return replace(config, sources=(source,))


def run_demo(pause: float = 0.6) -> None:
    started = time.monotonic()
    alpha, beta = f"sk-demo-{secrets.token_hex(12)}", f"sk-demo-{secrets.token_hex(12)}"
    with (
        tempfile.TemporaryDirectory(prefix="model-monitor-demo-") as tmp,
        GatewaySimulator(seed=42) as gateway,
        WebhookReceiver() as receiver,
    ):
        db = open_database(f"sqlite:///{Path(tmp) / 'demo.db'}")
        config = _demo_config(gateway.base_url, receiver.url, alpha, beta)
        gateway.set_group("default", BASE_MODELS)
        gateway.add_token(alpha, group="default")
        gateway.add_token(beta, group="default")
        gateway.set_usage(alpha, granted=100 * _QUOTA_PER_USD, used=40 * _QUOTA_PER_USD)
        gateway.set_pricing(_pricing("1.25"))
        checker = Checker(config, db)
        channels = build_channels(config)
        dispatcher = Dispatcher(config, db, channels)
        cycle = 0

        def step(title: str) -> None:
            nonlocal cycle
            cycle += 1
            click.secho(f"\n== cycle {cycle}: {title}", bold=True)
            for report in checker.check():
                for token in report.tokens:
                    click.echo(f"   {token.token}: {_describe(token)}")
            dispatcher.run_once()
            time.sleep(pause)

        click.secho("model-monitor demo", bold=True)
        click.echo(
            f"simulated new-api gateway at {gateway.base_url} (models served in random order)"
        )
        click.echo(f"webhook receiver at {receiver.url}; database in {tmp}")

        step("first look at both tokens")
        step("same models, shuffled order: nothing to report")

        gateway.set_group(
            "default", [*BASE_MODELS, make_model("gpt-5", ("openai", "openai-response"))]
        )
        gateway.set_verdict("gpt-5", "no_channel")
        step("the gateway adds gpt-5 (new models are reported at once), but no channel serves it")

        soon = int(time.time()) + 5 * 86400
        gateway.set_usage(alpha, expires_at=soon, used=95 * _QUOTA_PER_USD)
        step(
            "team-alpha now expires in 5 days and has $5 of $100 left (warned once each); "
            "a second probe confirms gpt-5 is listed but not callable"
        )
        gateway.set_verdict("gpt-5", None)

        changed = [m for m in BASE_MODELS if m["id"] not in ("gpt-3.5-turbo",)]
        changed = [
            {**m, "supported_endpoint_types": ["openai", "openai-response"]}
            if m["id"] == "gpt-4o"
            else m
            for m in changed
        ]
        gateway.set_group("default", [*changed, make_model("gpt-5", ("openai", "openai-response"))])
        gateway.set_pricing(_pricing("2.5"))
        step(
            "gpt-3.5-turbo vanishes, gpt-4o gains an endpoint type and doubles its price "
            "(held by the flap guard); gpt-5's channel works now"
        )
        step("still the same: now confirmed and reported, and gpt-5 is callable again")

        gateway.expire_token(beta)
        step("team-beta's token expires (auth failures are reported at once)")
        step("still expired: no repeated alert")
        gateway.renew_token(beta)
        step("team-beta's token is renewed")

        received = receiver.received
        click.secho(f"\n== the webhook received {len(received)} request(s)", bold=True)
        for request in received:
            body = request.json()
            click.echo(
                f"   {request.headers.get('webhook-id')}  {body['type']:<16} {body['summary']}"
            )
        if received:
            first = next((r for r in received if r.json()["type"] == "models.changed"), received[0])
            click.echo("\n   headers of one request:")
            for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
                click.echo(f"     {name}: {first.headers.get(name)}")
            click.echo("   its body:")
            click.echo("     " + json.dumps(first.json(), indent=2).replace("\n", "\n     "))
        for channel in channels.values():
            channel.close()
        db.close()
    elapsed = time.monotonic() - started
    click.echo(f"\ndone in {elapsed:.1f}s. Next: `model-monitor init` writes a starter config.")


_QUOTA_PER_USD = 500_000  # new-api's quota units


def _pricing(gpt4o_ratio: str) -> list[dict[str, object]]:
    """new-api's price list for the demo's models: ratio 1.25 is $2.50 per 1M input tokens."""
    return [
        {"model_name": m["id"], "model_ratio": gpt4o_ratio, "completion_ratio": 4}
        if m["id"] == "gpt-4o"
        else {"model_name": m["id"], "model_ratio": "0.5", "completion_ratio": 2}
        for m in BASE_MODELS
    ]


def _describe(token: CheckReport) -> str:
    if token.error:
        return f"failed ({describe_error(token.error)})"
    if token.baseline:
        return f"{token.model_count} models, baseline recorded silently"
    return f"{token.model_count} models, {len(token.changes)} change(s)"
