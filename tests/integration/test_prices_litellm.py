"""A LiteLLM proxy's /model/info costs, as the simulator plays the proxy: parsed exactly
and reported as price_changed in USD per 1M tokens, like new-api's prices."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from monitor.core.records import EventType
from monitor.events import payload_errors
from monitor.runtime.cycle import Checker
from monitor.sim import GatewaySimulator, make_model
from monitor.sim.config import sim_config
from monitor.sources.base import InvalidResponse
from monitor.sources.pricing import parse_litellm_model_info
from monitor.store.database import open_database
from tests.support.clock import Clock

KEY = "sk-litellm-virtual-key-0000000000"


def model(prompt: str) -> dict:
    return make_model("gpt-4o", pricing={"prompt": prompt, "completion": "0.00001"})


def test_costs_are_read_exactly_and_the_highest_deployment_wins() -> None:
    body = json.loads(
        '{"data": ['
        '{"model_name": "a", "model_info": {"input_cost_per_token": 2.5e-06,'
        ' "output_cost_per_token": 1e-05}},'
        '{"model_name": "a", "model_info": {"input_cost_per_token": 3e-06,'
        ' "output_cost_per_token": null}},'
        '{"model_name": "b", "model_info": {"input_cost_per_token": null}}]}',
        parse_float=Decimal,
    )
    prices = parse_litellm_model_info(body).prices
    assert prices["a"].to_pairs() == (("input", "3"), ("output", "10"))
    assert prices["b"].empty
    with pytest.raises(InvalidResponse, match="model_info"):
        parse_litellm_model_info({"data": [{"model_name": "c", "model_info": []}]})


def test_a_litellm_cost_change_is_a_price_change(db_url: str) -> None:
    clock = Clock()
    db = open_database(db_url)
    try:
        with GatewaySimulator(flavor="litellm", seed=3) as proxy:
            proxy.set_group("default", [model("0.0000025")])
            proxy.add_token(KEY)
            config = sim_config(proxy.base_url, {"k": KEY}, prices_interval=0.0, confirm_checks=1)
            config = replace(config, sources=(replace(config.sources[0], flavor="litellm"),))
            check = Checker(config, db, clock=clock)
            check.check()
            proxy.set_group("default", [model("0.000005")])
            clock.advance(timedelta(minutes=1))
            (report,) = check.check()
    finally:
        db.close()
    (event,) = [e for e in report.events if e.type is EventType.MODELS_CHANGED]
    payload = event.to_payload()
    assert payload_errors(payload) == []
    (change,) = [c for c in payload["changes"] if c["type"] == "price_changed"]
    assert (change["before"], change["after"]) == (
        {"input": "2.5", "output": "10"},
        {"input": "5", "output": "10"},
    )
