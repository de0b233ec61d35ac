"""The gateway simulator and the webhook receiver, driven over real loopback sockets."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from monitor.sim import Fault, GatewaySimulator, WebhookReceiver, fingerprint, make_model

TOKEN = "sk-sim-test-0123456789abcdef"
OTHER = "sk-sim-other-fedcba9876543210"
MODELS = [
    make_model("gpt-4o", ("openai", "openai-response")),
    make_model("claude-sonnet-4", ("anthropic", "openai"), owned_by="claude"),
    make_model("text-embedding-3-small", ("embeddings",)),
    make_model("legacy-model", None, owned_by="custom"),
]


@pytest.fixture
def sim() -> Iterator[GatewaySimulator]:
    with GatewaySimulator(seed=7) as gateway:
        gateway.set_group("default", MODELS)
        gateway.add_token(TOKEN)
        yield gateway


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def get(
    session: requests.Session, sim: GatewaySimulator, token: str | None = TOKEN, **kwargs: object
) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    kwargs.setdefault("timeout", 5)
    return session.get(f"{sim.base_url}/models", headers=headers, **kwargs)  # type: ignore[arg-type]


def raw_get(sim: GatewaySimulator, token: str = TOKEN) -> tuple[bytes, bytes]:
    """Headers and body exactly as sent, read until the server closes."""
    with socket.create_connection((sim.host, sim.port), timeout=5) as conn:
        conn.sendall(
            f"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head, body


# -- wire formats ---------------------------------------------------------------------------


def test_make_model_is_new_api_wire_format() -> None:
    assert make_model("gpt-4o") == {
        "id": "gpt-4o",
        "object": "model",
        "created": 1626777600,
        "owned_by": "openai",
        "supported_endpoint_types": ["openai"],
    }
    assert "supported_endpoint_types" not in make_model("old", None)


def test_new_api_format(sim: GatewaySimulator, http: requests.Session) -> None:
    response = get(http, sim)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["data", "object", "success"]
    assert body["object"] == "list"
    assert body["success"] is True
    by_id = {m["id"]: m for m in body["data"]}
    assert by_id.keys() == {m["id"] for m in MODELS}
    assert by_id["gpt-4o"] == MODELS[0]
    assert "supported_endpoint_types" not in by_id["legacy-model"]


def test_one_api_format(sim: GatewaySimulator, http: requests.Session) -> None:
    sim.flavor = "one-api"
    first, second = get(http, sim).json(), get(http, sim).json()
    assert "success" not in first
    assert first["object"] == "list"
    model = next(m for m in first["data"] if m["id"] == "claude-sonnet-4")
    assert model["owned_by"] == "claude"
    assert model["created"] == 1626777600
    assert model["root"] == "claude-sonnet-4"
    assert model["parent"] is None
    assert "supported_endpoint_types" not in model
    assert model["permission"][0]["object"] == "model_permission"
    # Permission ids are random: exactly the noise a parser must drop.
    ids = {m["id"]: m["permission"][0]["id"] for m in first["data"]}
    assert all(ids[m["id"]] != m["permission"][0]["id"] for m in second["data"])


def test_openai_format(sim: GatewaySimulator, http: requests.Session) -> None:
    sim.flavor = "openai"
    body = get(http, sim).json()
    assert set(body) == {"object", "data"}
    assert all(set(m) == {"id", "object", "created", "owned_by"} for m in body["data"])


def test_unknown_flavor_is_refused() -> None:
    with pytest.raises(ValueError, match="flavor"):
        GatewaySimulator(flavor="vllm")


def test_order_is_shuffled_on_every_request(http: requests.Session) -> None:
    with GatewaySimulator(seed=3) as sim:
        sim.set_group("default", [f"model-{i}" for i in range(30)])
        sim.add_token(TOKEN)
        orders = [tuple(m["id"] for m in get(http, sim).json()["data"]) for _ in range(5)]
    assert len(set(orders)) == 5
    assert len({frozenset(order) for order in orders}) == 1
    # Seeded: the same requests against the same seed see the same orders.
    with GatewaySimulator(seed=3) as again:
        again.set_group("default", [f"model-{i}" for i in range(30)])
        again.add_token(TOKEN)
        assert tuple(m["id"] for m in get(http, again).json()["data"]) == orders[0]


def test_gzip_when_compress_is_on(http: requests.Session) -> None:
    with GatewaySimulator(compress=True) as sim:
        sim.set_group("default", [f"model-{i}" for i in range(100)])
        sim.add_token(TOKEN)
        response = get(http, sim)
    assert response.headers["Content-Encoding"] == "gzip"
    assert len(response.json()["data"]) == 100


# -- tokens ---------------------------------------------------------------------------------


def assert_invalid_token(response: requests.Response) -> None:
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["type"] == "new_api_error"
    assert error["code"] == ""
    assert error["message"].startswith("Invalid token (request id: ")


def test_missing_unknown_and_non_bearer_tokens_get_401(
    sim: GatewaySimulator, http: requests.Session
) -> None:
    assert_invalid_token(get(http, sim, token=None))
    assert_invalid_token(get(http, sim, token="sk-nobody"))
    url = f"{sim.base_url}/models"
    assert_invalid_token(http.get(url, headers={"x-api-key": TOKEN}, timeout=5))
    assert_invalid_token(http.get(url, headers={"Authorization": f"Basic {TOKEN}"}, timeout=5))
    assert get(http, sim).status_code == 200


def test_expire_and_renew(sim: GatewaySimulator, http: requests.Session) -> None:
    sim.expire_token(TOKEN)
    assert_invalid_token(get(http, sim))
    # The usage endpoint still answers, which is what explains the 401.
    usage = http.get(
        f"http://{sim.host}:{sim.port}/api/usage/token/",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    ).json()
    assert usage["code"] is True
    assert usage["message"] == "ok"
    assert 0 < usage["data"]["expires_at"] <= time.time()
    assert {"total_available", "unlimited_quota"} <= usage["data"].keys()
    sim.renew_token(TOKEN)
    assert get(http, sim).status_code == 200


def test_groups_and_allow_lists(sim: GatewaySimulator, http: requests.Session) -> None:
    sim.set_group("vip", ["gpt-5", "o3"])
    sim.add_token(OTHER, group="vip")
    assert {m["id"] for m in get(http, sim, OTHER).json()["data"]} == {"gpt-5", "o3"}
    sim.set_models(OTHER, ["only-this"])
    assert [m["id"] for m in get(http, sim, OTHER).json()["data"]] == ["only-this"]
    assert [m["id"] for m in sim.visible_models(OTHER)] == ["only-this"]
    sim.set_models(OTHER, None)
    assert len(get(http, sim, OTHER).json()["data"]) == 2
    sim.add_token("sk-own", models=[make_model("x", ())])
    assert get(http, sim, "sk-own").json()["data"] == [make_model("x", ())]
    with pytest.raises(KeyError) as excinfo:
        sim.expire_token("sk-not-a-token-value")
    assert "sk-not-a-token-value" not in str(excinfo.value)


def test_request_log_never_holds_token_values(
    sim: GatewaySimulator, http: requests.Session
) -> None:
    get(http, sim)
    get(http, sim, token="sk-nobody")
    get(http, sim, token=None)
    assert [(r.path, r.token, r.status) for r in sim.requests] == [
        ("/v1/models", fingerprint(TOKEN), 200),
        ("/v1/models", fingerprint("sk-nobody"), 401),
        ("/v1/models", None, 401),
    ]
    assert TOKEN not in repr(sim.requests)
    assert sim.requests_count() == 3
    assert sim.requests_count(TOKEN) == 1
    sim.reset_requests()
    assert sim.requests_count() == 0


def test_concurrent_requests(sim: GatewaySimulator) -> None:
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with requests.Session() as session:
                for _ in range(20):
                    assert len(get(session, sim).json()["data"]) == len(MODELS)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sim.requests_count(TOKEN) == 160


# -- faults ---------------------------------------------------------------------------------


def test_fault_http_uses_new_api_error_body(sim: GatewaySimulator, http: requests.Session) -> None:
    sim.inject(Fault.http(403, code="access_denied"))
    response = get(http, sim)
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["type"] == "new_api_error"
    assert error["code"] == "access_denied"
    assert "(request id: " in error["message"]
    sim.inject(Fault.http(400, body={"error": "plain"}))
    assert get(http, sim).json() == {"error": "plain"}
    assert get(http, sim).status_code == 200  # times=1: back to normal


def test_fault_panic(sim: GatewaySimulator, http: requests.Session) -> None:
    sim.inject(Fault.panic())
    response = get(http, sim)
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "new_api_panic"


def test_fault_html(sim: GatewaySimulator, http: requests.Session) -> None:
    sim.inject(Fault.html(502))
    response = get(http, sim)
    assert response.status_code == 502
    assert response.headers["Content-Type"].startswith("text/html")
    assert "<title>502 Bad Gateway</title>" in response.text


def test_fault_rate_limited(sim: GatewaySimulator, http: requests.Session) -> None:
    sim.inject(Fault.rate_limited())
    sim.inject(Fault.rate_limited(7))
    sim.inject(Fault.rate_limited("Wed, 21 Oct 2026 07:28:00 GMT", retry_after_ms=1500))
    bare, seconds, dated = get(http, sim), get(http, sim), get(http, sim)
    assert bare.status_code == 429
    assert bare.content == b""
    assert "Retry-After" not in bare.headers
    assert "Content-Type" not in bare.headers
    assert seconds.headers["Retry-After"] == "7"
    assert dated.headers["Retry-After"] == "Wed, 21 Oct 2026 07:28:00 GMT"
    assert dated.headers["retry-after-ms"] == "1500"


def test_fault_success_false_and_error_body(sim: GatewaySimulator, http: requests.Session) -> None:
    sim.inject(Fault.success_false("db down"))
    sim.inject(Fault.error_body("no channel"))
    failed, error = get(http, sim), get(http, sim)
    assert failed.status_code == 200
    assert failed.json() == {"success": False, "message": "db down"}
    assert error.status_code == 200
    assert error.json()["error"]["message"].startswith("no channel (request id: ")


def test_fault_invalid_utf8(sim: GatewaySimulator, http: requests.Session) -> None:
    sim.inject(Fault.invalid_utf8())
    body = get(http, sim).content
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")


@pytest.mark.parametrize("value", [None, {}, "x", [{"object": "model"}]])
def test_fault_data(sim: GatewaySimulator, http: requests.Session, value: object) -> None:
    sim.inject(Fault.data(value))
    assert get(http, sim).json() == {"data": value, "object": "list", "success": True}


def test_fault_slow(sim: GatewaySimulator, http: requests.Session) -> None:
    sim.inject(Fault.slow(0.2))
    started = time.monotonic()
    assert get(http, sim).status_code == 200
    assert time.monotonic() - started >= 0.2


def test_fault_drip_sends_byte_by_byte(http: requests.Session) -> None:
    with GatewaySimulator() as sim:
        sim.add_token(TOKEN)  # no models: a 42-byte body
        sim.inject(Fault.drip(0.005))
        started = time.monotonic()
        response = get(http, sim)
        assert response.json()["data"] == []
        assert time.monotonic() - started >= 0.005 * len(response.content) * 0.9


def test_fault_drip_is_cut_by_client_timeout(http: requests.Session) -> None:
    with GatewaySimulator() as sim:
        sim.add_token(TOKEN)
        sim.inject(Fault.drip(0.5))
        with pytest.raises(requests.exceptions.ConnectionError):
            get(http, sim, timeout=0.2).content  # noqa: B018 - reading is the point
        # The simulator survives a client that hangs up.
        assert get(http, sim).status_code == 200


def test_fault_truncated_declares_the_full_length(sim: GatewaySimulator) -> None:
    sim.inject(Fault.truncated(after=10))
    head, body = raw_get(sim)
    declared = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    assert len(body) == 10 < declared


def test_fault_truncated_breaks_requests(sim: GatewaySimulator, http: requests.Session) -> None:
    sim.inject(Fault.truncated())
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        get(http, sim)


def test_fault_disconnect(sim: GatewaySimulator, http: requests.Session) -> None:
    sim.inject(Fault.disconnect())
    with pytest.raises(requests.exceptions.ConnectionError):
        get(http, sim)
    assert sim.requests[-1].status is None
    assert get(http, sim).status_code == 200


def test_fault_oversize(sim: GatewaySimulator, http: requests.Session) -> None:
    sim.inject(Fault.oversize(50_000))
    sim.inject(Fault.oversize(50_000, chunked=True))
    declared, chunked = get(http, sim), get(http, sim)
    assert int(declared.headers["Content-Length"]) == len(declared.content) >= 50_000
    assert len(declared.json()["data"]) > 100
    assert "Content-Length" not in chunked.headers
    assert chunked.headers["Transfer-Encoding"] == "chunked"
    assert chunked.content == declared.content


def test_fault_headers_join_the_normal_answer(
    sim: GatewaySimulator, http: requests.Session
) -> None:
    sim.inject(Fault(headers={"X-Extra": "1"}))
    response = get(http, sim)
    assert response.headers["X-Extra"] == "1"
    assert len(response.json()["data"]) == len(MODELS)


def test_inject_targets_a_token_and_counts(sim: GatewaySimulator, http: requests.Session) -> None:
    sim.add_token(OTHER)
    sim.inject(Fault.http(500), token=OTHER, times=2)
    assert get(http, sim).status_code == 200
    assert [get(http, sim, OTHER).status_code for _ in range(3)] == [500, 500, 200]
    sim.inject(Fault.http(503), times=None)
    assert [get(http, sim, t).status_code for t in (TOKEN, OTHER, TOKEN)] == [503, 503, 503]
    sim.clear_faults()
    assert get(http, sim).status_code == 200
    with pytest.raises(ValueError, match="times"):
        sim.inject(Fault.panic(), times=0)


def test_faults_queue_in_order(sim: GatewaySimulator, http: requests.Session) -> None:
    sim.inject(Fault.http(500))
    sim.inject(Fault.http(502))
    assert [get(http, sim).status_code for _ in range(3)] == [500, 502, 200]


def test_inject_skip_lets_requests_through_first(
    sim: GatewaySimulator, http: requests.Session
) -> None:
    sim.add_token(OTHER)
    sim.inject(Fault.http(500), token=TOKEN, skip=2)
    # Another token's requests do not count towards the skip.
    assert get(http, sim, OTHER).status_code == 200
    assert [get(http, sim).status_code for _ in range(4)] == [200, 200, 500, 200]
    # Skips count every matching request, even one another fault hit.
    sim.inject(Fault.http(502))
    sim.inject(Fault.http(503), skip=1)
    assert [get(http, sim).status_code for _ in range(3)] == [502, 503, 200]
    sim.inject(Fault.http(500), times=2, skip=1)
    assert [get(http, sim).status_code for _ in range(4)] == [200, 500, 500, 200]
    with pytest.raises(ValueError, match="skip"):
        sim.inject(Fault.panic(), skip=-1)


def test_requests_are_logged_on_arrival(sim: GatewaySimulator) -> None:
    sim.inject(Fault.slow(0.3))
    statuses: list[int] = []
    thread = threading.Thread(
        target=lambda: statuses.append(get(requests.Session(), sim).status_code)
    )
    thread.start()
    deadline = time.monotonic() + 2
    while sim.requests_count(TOKEN) == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert thread.is_alive()  # still waiting on the slow fault
    assert sim.requests == [("/v1/models", fingerprint(TOKEN), None)]
    thread.join(timeout=5)
    assert statuses == [200]
    assert sim.requests == [("/v1/models", fingerprint(TOKEN), 200)]


def test_faults_spare_other_routes(sim: GatewaySimulator, http: requests.Session) -> None:
    sim.inject(Fault.http(500), times=None)
    usage = http.get(
        f"http://{sim.host}:{sim.port}/api/usage/token/",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    )
    assert usage.status_code == 200
    assert get(http, sim).status_code == 500


def test_stop_restart_keeps_the_url_and_cuts_drips(http: requests.Session) -> None:
    sim = GatewaySimulator().start()
    sim.add_token(TOKEN)
    url = sim.base_url
    sim.inject(Fault.drip(1.0))
    thread = threading.Thread(target=lambda: raw_get(sim), daemon=True)
    thread.start()
    time.sleep(0.05)
    started = time.monotonic()
    sim.stop()
    assert time.monotonic() - started < 1.0
    thread.join(timeout=2)
    assert not thread.is_alive()
    with pytest.raises(requests.exceptions.ConnectionError):
        get(http, sim)
    with sim:
        assert sim.base_url == url
        assert get(http, sim).json()["data"] == []


# -- webhook receiver -----------------------------------------------------------------------


def test_receiver_records_posts(receiver: WebhookReceiver, http: requests.Session) -> None:
    response = http.post(
        receiver.url, json={"type": "test"}, headers={"Webhook-Id": "msg_1"}, timeout=5
    )
    assert (response.status_code, response.text) == (200, "ok")
    http.post(receiver.url.replace("/hook", "/other"), data=b"\x00raw", timeout=5)
    first, second = receiver.wait_for(2)
    assert first.path == "/hook"
    assert first.headers["webhook-id"] == "msg_1"
    assert first.headers["content-type"] == "application/json"
    assert first.json() == {"type": "test"}
    assert second.path == "/other"
    assert second.body == b"\x00raw"
    receiver.clear()
    assert receiver.received == []


def test_receiver_reads_chunked_bodies(receiver: WebhookReceiver, http: requests.Session) -> None:
    http.post(receiver.url, data=iter([b'{"a":', b"1}"]), timeout=5)
    assert receiver.wait_for(1)[0].json() == {"a": 1}


def test_receiver_canned_responses(receiver: WebhookReceiver, http: requests.Session) -> None:
    receiver.respond_with(429, "slow down", {"Retry-After": "3"}, times=2)
    receiver.respond_with(410, {"error": "gone"})
    statuses = [http.post(receiver.url, data=b"{}", timeout=5) for _ in range(4)]
    assert [r.status_code for r in statuses] == [429, 429, 410, 200]
    assert statuses[0].headers["Retry-After"] == "3"
    assert statuses[0].text == "slow down"
    assert statuses[2].json() == {"error": "gone"}
    assert len(receiver.received) == 4


def test_receiver_delay_and_wait_for_timeout(
    receiver: WebhookReceiver, http: requests.Session
) -> None:
    receiver.respond_with(200, delay=0.5)
    with pytest.raises(requests.exceptions.ReadTimeout):
        http.post(receiver.url, data=b"{}", timeout=0.1)
    assert len(receiver.wait_for(1)) == 1
    with pytest.raises(TimeoutError, match="1 of 2"):
        receiver.wait_for(2, timeout=0.05)


def test_receiver_wait_for_wakes_on_arrival(receiver: WebhookReceiver) -> None:
    def post_later() -> None:
        time.sleep(0.05)
        requests.post(receiver.url, data=json.dumps({"n": 1}), timeout=5)

    threading.Thread(target=post_later).start()
    started = time.monotonic()
    assert receiver.wait_for(1, timeout=5)[0].json() == {"n": 1}
    assert time.monotonic() - started < 2
