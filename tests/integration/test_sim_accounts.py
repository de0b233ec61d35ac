"""new-api's account routes on the gateway simulator: usage, its limiter, billing, pricing.

Each test asks over a real loopback socket and checks what came back, so a client
tested against the simulator meets the shapes and limits of a real new-api.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from monitor.sim import Fault, GatewaySimulator, fingerprint, make_model

TOKEN = "sk-acct-test-0123456789abcdef"
OTHER = "sk-acct-other-fedcba9876543210"
MODELS = [
    make_model("gpt-4o", ("openai", "openai-response")),
    make_model("claude-sonnet-4", ("anthropic", "openai"), owned_by="claude"),
    make_model("text-embedding-3-small", ("embeddings",)),
    make_model("legacy-model", None, owned_by="custom"),
    "gemini-2.5-pro",
    "o3",
    "deepseek-v3",
    "qwen3-max",
]
USAGE_KEYS = {
    "object",
    "name",
    "total_granted",
    "total_used",
    "total_available",
    "unlimited_quota",
    "model_limits",
    "model_limits_enabled",
    "expires_at",
}
ENTRY_KEYS = {
    "model_name",
    "quota_type",
    "model_ratio",
    "model_price",
    "completion_ratio",
    "enable_groups",
    "supported_endpoint_types",
    "owner_by",
    "vendor_id",
    "description",
    "tags",
}


class Tick:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Tick:
    return Tick()


@pytest.fixture
def sim(clock: Tick) -> Iterator[GatewaySimulator]:
    with GatewaySimulator(flavor="new-api", seed=1, usage_clock=clock) as gateway:
        gateway.set_group("default", MODELS)
        gateway.add_token(TOKEN)
        yield gateway


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def fetch(
    http: requests.Session, sim: GatewaySimulator, path: str, token: str | None = TOKEN
) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return http.get(f"http://{sim.host}:{sim.port}{path}", headers=headers, timeout=5)


def usage(http: requests.Session, sim: GatewaySimulator, token: str | None = TOKEN) -> Any:
    response = fetch(http, sim, "/api/usage/token/", token)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def models_status(http: requests.Session, sim: GatewaySimulator, token: str = TOKEN) -> int:
    return fetch(http, sim, "/v1/models", token).status_code


# -- the usage route ------------------------------------------------------------------------


def test_usage_has_new_apis_shape_and_zero_for_never(
    sim: GatewaySimulator, http: requests.Session
) -> None:
    response = fetch(http, sim, "/api/usage/token/")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert (body["code"], body["message"]) == (True, "ok")
    data = body["data"]
    assert set(data) == USAGE_KEYS
    assert data["object"] == "token_usage"
    assert (data["total_granted"], data["total_used"], data["total_available"]) == (
        500_000,
        0,
        500_000,
    )
    assert data["unlimited_quota"] is False
    assert (data["model_limits"], data["model_limits_enabled"]) == ({}, False)
    assert data["expires_at"] == 0  # never: 0 on the wire, not the table's -1
    assert b'"expires_at":0' in response.content
    # Without the trailing slash too.
    assert fetch(http, sim, "/api/usage/token").json()["data"] == data


def test_set_usage_changes_what_the_route_reports(
    sim: GatewaySimulator, http: requests.Session
) -> None:
    soon = int(time.time()) + 3600
    sim.set_usage(TOKEN, granted=2_000_000, used=750_000, expires_at=soon)
    data = usage(http, sim)
    assert (data["total_granted"], data["total_used"], data["total_available"]) == (
        2_000_000,
        750_000,
        1_250_000,
    )
    assert data["expires_at"] == soon
    sim.set_usage(TOKEN, used=100)  # the other fields stay
    data = usage(http, sim)
    assert (data["total_granted"], data["total_used"], data["total_available"]) == (
        2_000_000,
        100,
        1_999_900,
    )
    assert data["expires_at"] == soon
    sim.set_usage(TOKEN, expires_at=0, unlimited=True)
    data = usage(http, sim)
    assert (data["expires_at"], data["unlimited_quota"]) == (0, True)
    # An unlimited token with nothing left still lists models, as in new-api.
    sim.set_usage(TOKEN, granted=10, used=10)
    assert usage(http, sim)["total_available"] == 0
    assert models_status(http, sim) == 200
    sim.set_usage(TOKEN, unlimited=False)
    assert models_status(http, sim) == 401


def test_set_usage_rejects_unknown_tokens_and_non_integers(sim: GatewaySimulator) -> None:
    with pytest.raises(KeyError):
        sim.set_usage("sk-nobody", granted=1)
    with pytest.raises(TypeError):
        sim.set_usage(TOKEN, used=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        sim.set_usage(TOKEN, granted=True)


def test_set_usage_is_atomic_while_the_server_answers(
    sim: GatewaySimulator, http: requests.Session
) -> None:
    sim.set_usage_limit(None)
    seen: list[dict[str, Any]] = []
    stop = threading.Event()

    def poll() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                seen.append(usage(session, sim))

    thread = threading.Thread(target=poll)
    thread.start()
    try:
        for granted in range(1_000, 200_000, 1_000):
            sim.set_usage(TOKEN, granted=granted, used=granted // 4)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert seen
    for data in seen:
        assert data["total_available"] == data["total_granted"] - data["total_used"]
        assert data["total_used"] in (0, data["total_granted"] // 4)


def test_expired_and_exhausted_tokens_are_still_answered(
    sim: GatewaySimulator, http: requests.Session
) -> None:
    sim.expire_token(TOKEN)
    assert models_status(http, sim) == 401
    data = usage(http, sim)
    assert 0 < data["expires_at"] <= time.time()
    sim.renew_token(TOKEN)
    assert usage(http, sim)["expires_at"] == 0
    assert models_status(http, sim) == 200

    sim.set_usage(TOKEN, granted=800_000, used=300_000, unlimited=True)
    sim.exhaust_token(TOKEN)
    assert models_status(http, sim) == 401
    data = usage(http, sim)
    assert (data["total_granted"], data["total_used"], data["total_available"]) == (
        800_000,
        800_000,
        0,
    )
    assert data["unlimited_quota"] is False
    sim.renew_token(TOKEN)
    data = usage(http, sim)
    assert data["total_available"] == 500_000
    assert data["total_granted"] - data["total_used"] == 500_000
    assert models_status(http, sim) == 200


def test_unknown_or_missing_tokens_get_401(sim: GatewaySimulator, http: requests.Session) -> None:
    for token in ("sk-nobody", None):
        response = fetch(http, sim, "/api/usage/token/", token)
        assert response.status_code == 401
        assert response.json()["error"]["message"].startswith("Invalid token (request id: ")


# -- the critical limiter ---------------------------------------------------------------


def test_the_limiter_refuses_the_21st_request_until_the_window_passed(
    sim: GatewaySimulator, http: requests.Session, clock: Tick
) -> None:
    start = clock.now
    for _ in range(20):
        assert fetch(http, sim, "/api/usage/token/").status_code == 200
        clock.now += 1
    refused = fetch(http, sim, "/api/usage/token/")
    assert refused.status_code == 429
    assert refused.content == b""  # new-api's limiter aborts without a body
    clock.now = start + 1199.5  # the first request is still within the window
    assert fetch(http, sim, "/api/usage/token/").status_code == 429
    clock.now = start + 1200  # now it left it: one slot is free again
    assert fetch(http, sim, "/api/usage/token/").status_code == 200
    assert fetch(http, sim, "/api/usage/token/").status_code == 429
    clock.now = start + 1201
    assert fetch(http, sim, "/api/usage/token/").status_code == 200

    answered = sim.usage_requests()
    assert answered == [*(start + i for i in range(20)), start + 1200, start + 1201]
    assert [r.status for r in sim.requests].count(429) == 3
    assert sim.requests[20] == ("/api/usage/token/", fingerprint(TOKEN), 429)
    assert sim.requests_count() == 25


def test_the_limiter_counts_every_caller_but_no_other_route(
    sim: GatewaySimulator, http: requests.Session
) -> None:
    sim.set_usage_limit(3, window=60)
    assert fetch(http, sim, "/api/usage/token/", "sk-nobody").status_code == 401
    assert fetch(http, sim, "/api/usage/token/", None).status_code == 401
    assert fetch(http, sim, "/api/usage/token/").status_code == 200
    assert fetch(http, sim, "/api/usage/token/").status_code == 429
    for path in ("/v1/models", "/v1/dashboard/billing/usage", "/api/pricing"):
        for _ in range(5):
            assert fetch(http, sim, path).status_code == 200, path
    assert sim.max_usage_in_window(60) == 4
    assert len(sim.usage_requests()) == 1


def test_the_limiter_can_be_turned_off(sim: GatewaySimulator, http: requests.Session) -> None:
    sim.set_usage_limit(None)
    statuses = {fetch(http, sim, "/api/usage/token/").status_code for _ in range(30)}
    assert statuses == {200}
    assert sim.max_usage_in_window() == 30
    with pytest.raises(ValueError, match="count"):
        sim.set_usage_limit(0)
    with pytest.raises(ValueError, match="window"):
        sim.set_usage_limit(5, window=0)


def test_max_usage_in_window_counts_refused_requests_too(
    sim: GatewaySimulator, http: requests.Session, clock: Tick
) -> None:
    start = clock.now
    for offset in (0, 100, 1199, 1200, 1299):
        clock.now = start + offset
        assert fetch(http, sim, "/api/usage/token/").status_code == 200
    # [100, 1300) holds the requests at 100, 1199, 1200 and 1299; [0, 1200) only three.
    assert sim.max_usage_in_window(1200) == 4
    assert sim.max_usage_in_window(1199) == 3
    assert sim.max_usage_in_window(99.5) == 2
    assert sim.max_usage_in_window(1) == 1

    sim.set_usage_limit(2, window=10)
    clock.now = start + 5000
    statuses = [fetch(http, sim, "/api/usage/token/").status_code for _ in range(5)]
    assert statuses == [200, 200, 429, 429, 429]
    assert sim.max_usage_in_window(10) == 5
    assert len(sim.usage_requests()) == 7
    sim.reset_requests()
    assert (sim.max_usage_in_window(), sim.usage_requests()) == (0, [])
    # The limiter's memory survives the reset, as the gateway's would.
    assert fetch(http, sim, "/api/usage/token/").status_code == 429


def test_the_limit_is_on_by_default_with_the_real_clock(http: requests.Session) -> None:
    with GatewaySimulator(seed=3) as sim:
        sim.add_token(TOKEN)
        statuses = [fetch(http, sim, "/api/usage/token/").status_code for _ in range(22)]
        # The clock is also a settable attribute: twenty minutes later, it answers again.
        sim.usage_clock = lambda: time.monotonic() + 1200
        statuses.append(fetch(http, sim, "/api/usage/token/").status_code)
    assert statuses == [200] * 20 + [429, 429, 200]


# -- billing --------------------------------------------------------------------------------


def test_billing_routes_report_the_account_in_dollars(
    sim: GatewaySimulator, http: requests.Session
) -> None:
    soon = int(time.time()) + 86_400
    sim.set_usage(TOKEN, granted=1_250_000, used=375_000, expires_at=soon)
    for prefix in ("/v1", ""):
        subscription = fetch(http, sim, f"{prefix}/dashboard/billing/subscription")
        assert subscription.status_code == 200
        assert subscription.json() == {
            "object": "billing_subscription",
            "has_payment_method": True,
            "soft_limit_usd": 2.5,
            "hard_limit_usd": 2.5,
            "system_hard_limit_usd": 2.5,
            "access_until": soon,
        }
        spent = fetch(http, sim, f"{prefix}/dashboard/billing/usage")
        assert spent.json() == {"object": "list", "total_usage": 75}
        assert b'"total_usage":75}' in spent.content  # a Go float: no ".0"

    sim.set_usage(TOKEN, unlimited=True, expires_at=0)
    subscription = fetch(http, sim, "/v1/dashboard/billing/subscription")
    assert subscription.json()["hard_limit_usd"] == 100_000_000
    assert b'"soft_limit_usd":100000000,' in subscription.content
    assert subscription.json()["access_until"] == 0


def test_billing_refuses_what_the_models_route_refuses(
    sim: GatewaySimulator, http: requests.Session
) -> None:
    assert fetch(http, sim, "/v1/dashboard/billing/usage", "sk-nobody").status_code == 401
    sim.expire_token(TOKEN)
    response = fetch(http, sim, "/v1/dashboard/billing/subscription")
    assert response.status_code == 401
    assert response.json()["error"]["message"].startswith("Invalid token")


def test_one_api_serves_the_same_billing_routes(http: requests.Session) -> None:
    with GatewaySimulator(flavor="one-api", seed=2) as sim:
        sim.add_token(TOKEN)
        sim.set_usage(TOKEN, granted=500_000, used=5_000)
        subscription = fetch(http, sim, "/v1/dashboard/billing/subscription")
        spent = fetch(http, sim, "/dashboard/billing/usage")
        pricing = fetch(http, sim, "/api/pricing")
    assert subscription.json()["hard_limit_usd"] == 1
    assert spent.json()["total_usage"] == 1
    assert pricing.status_code == 404  # new-api's page, not one-api's


# -- the pricing page -----------------------------------------------------------------------


def test_default_pricing_lists_the_default_group(
    sim: GatewaySimulator, http: requests.Session
) -> None:
    response = fetch(http, sim, "/api/pricing", token=None)  # no login needed
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert {"data", "group_ratio", "usable_group", "vendors", "supported_endpoint"} <= set(body)
    assert isinstance(body["pricing_version"], str)
    assert (body["group_ratio"], body["vendors"], body["supported_endpoint"]) == (
        {"default": 1},
        [],
        {},
    )
    assert list(body["usable_group"]) == ["default"]
    ids = [m if isinstance(m, str) else m["id"] for m in MODELS]
    assert sorted(entry["model_name"] for entry in body["data"]) == sorted(ids)
    for entry in body["data"]:
        assert set(entry) >= ENTRY_KEYS
        assert (entry["quota_type"], entry["model_ratio"], entry["completion_ratio"]) == (
            0,
            1.25,
            4,
        )
        assert entry["enable_groups"] == ["default"]
    by_name = {entry["model_name"]: entry for entry in body["data"]}
    assert by_name["text-embedding-3-small"]["supported_endpoint_types"] == ["embeddings"]
    assert by_name["legacy-model"]["supported_endpoint_types"] == ["openai"]


def test_pricing_order_changes_per_request_but_not_its_content(
    sim: GatewaySimulator, http: requests.Session
) -> None:
    groups = {"default": 1, "vip": 0.8, "svip": 0.5, "free": 2, "auto": 1}
    sim.set_pricing(
        [
            {"model_name": f"m{i}", "model_ratio": i + 1, "enable_groups": list(groups)}
            for i in range(8)
        ],
        groups,
    )
    bodies = [fetch(http, sim, "/api/pricing").json() for _ in range(12)]
    orders = {tuple(entry["model_name"] for entry in body["data"]) for body in bodies}
    ratio_orders = {tuple(body["group_ratio"]) for body in bodies}
    usable_orders = {tuple(body["usable_group"]) for body in bodies}
    assert len(orders) > 1
    assert len(ratio_orders) > 1
    assert len(usable_orders) > 1
    canonical = {
        json.dumps(
            {**body, "data": sorted(body["data"], key=lambda e: e["model_name"])}, sort_keys=True
        )
        for body in bodies
    }
    assert len(canonical) == 1
    assert bodies[0]["group_ratio"] == groups
    assert set(bodies[0]["usable_group"]) == set(groups)


def test_set_pricing_fills_new_apis_defaults(sim: GatewaySimulator, http: requests.Session) -> None:
    sim.set_pricing(
        [
            {"model_name": "unpriced"},
            {"model_name": "per-call", "quota_type": 1, "model_price": 0.02},
            {"model_name": "cached", "model_ratio": 2.5, "completion_ratio": 8, "cache_ratio": 0.1},
        ]
    )
    body = fetch(http, sim, "/api/pricing").json()
    by_name = {entry["model_name"]: entry for entry in body["data"]}
    assert by_name["unpriced"] == {
        "model_name": "unpriced",
        "description": "",
        "tags": "",
        "vendor_id": 0,
        "quota_type": 0,
        "model_ratio": 37.5,  # new-api's "no price set"
        "model_price": 0,
        "owner_by": "",
        "completion_ratio": 1,
        "enable_groups": ["default"],
        "supported_endpoint_types": ["openai"],
    }
    assert (by_name["per-call"]["quota_type"], by_name["per-call"]["model_ratio"]) == (1, 0)
    assert by_name["per-call"]["model_price"] == 0.02
    assert by_name["cached"]["cache_ratio"] == 0.1
    assert "cache_ratio" not in by_name["unpriced"]
    assert body["group_ratio"] == {"default": 1}
    with pytest.raises(ValueError, match="model_name"):
        sim.set_pricing([{"model_ratio": 1}])
    with pytest.raises(ValueError, match="JSON number"):
        sim.set_pricing([{"model_name": "x", "model_ratio": "cheap"}])


def test_pricing_numbers_go_out_exactly_as_given(
    sim: GatewaySimulator, http: requests.Session
) -> None:
    sim.set_pricing(
        [
            {"model_name": "a", "model_ratio": "0.0375", "completion_ratio": "2.50"},
            {"model_name": "b", "model_ratio": 0.1 + 0.2, "model_price": 2.0},
        ],
        {"default": "0.0375", "vip": 1},
    )
    response = fetch(http, sim, "/api/pricing")
    text = response.text
    assert '"model_ratio":0.0375,' in text
    assert '"completion_ratio":2.50,' in text  # a string is the literal text
    assert '"default":0.0375' in text
    assert '"model_ratio":0.30000000000000004,' in text  # a float: its shortest repr
    assert '"model_price":2,' in text  # as Go writes 2.0
    assert "0.037500000" not in text
    assert response.json()["group_ratio"] == {"default": 0.0375, "vip": 1}


def test_hidden_pricing_answers_403_or_401_until_shown(
    sim: GatewaySimulator, http: requests.Session
) -> None:
    sim.hide_pricing(403)
    response = fetch(http, sim, "/api/pricing")
    assert response.status_code == 403
    assert response.json() == {"success": False, "message": "pricing is disabled"}
    sim.hide_pricing(401)
    response = fetch(http, sim, "/api/pricing")
    assert response.status_code == 401
    assert response.json()["success"] is False
    assert "access token" in response.json()["message"]
    sim.hide_pricing(None)
    assert fetch(http, sim, "/api/pricing").status_code == 200
    with pytest.raises(ValueError, match="401 or 403"):
        sim.hide_pricing(500)
    assert [r.status for r in sim.requests] == [403, 401, 200]


# -- faults and the request log ---------------------------------------------------------


def test_models_faults_spare_the_account_routes(
    sim: GatewaySimulator, http: requests.Session
) -> None:
    sim.inject(Fault.http(500), times=None)
    paths = [
        "/api/usage/token/",
        "/v1/dashboard/billing/subscription",
        "/dashboard/billing/usage",
        "/api/pricing",
    ]
    assert [fetch(http, sim, path).status_code for path in paths] == [200] * 4
    assert models_status(http, sim) == 500
    assert sim.requests == [
        *((path, fingerprint(TOKEN), 200) for path in paths),
        ("/v1/models", fingerprint(TOKEN), 500),
    ]
    assert sim.requests_count(TOKEN) == 5
    fetch(http, sim, "/api/pricing", token=None)
    assert sim.requests[-1] == ("/api/pricing", None, 200)
    assert sim.requests_count() == 6
