"""A minimal new-api gateway on the standard library: pre-encoded bodies, nothing else.

    .venv/bin/python bench/plain_gateway.py --tokens 1000 --models 1000 --latency 0.05

It shares no code with monitor.sim, so a benchmark against it measures the client, not
how well the client and the simulator agree. Every token is valid; each answer is one of
a few pre-encoded shufflings of the list (new-api returns its list in random order), and
the list can grow by one model (`add_model`) to measure a changed cycle. Like new-api it
also answers `/api/usage/token/` (a token's quota, a few hundred bytes) and
`/api/pricing` (every model's price ratios), and a POST to `/v1/chat/completions` (a
probe's call) with a one-token completion; any other path is a 404. `calls` counts the
POSTs.
"""

from __future__ import annotations

import argparse
import http.server
import json
import random
import threading
import time
from collections.abc import Sequence


def encode_variants(models: Sequence[str], variants: int = 8, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    items = [
        {
            "id": m,
            "object": "model",
            "created": 1626777600,
            "owned_by": "openai",
            "supported_endpoint_types": ["openai"],
        }
        for m in models
    ]
    bodies = []
    for _ in range(variants):
        rng.shuffle(items)
        # As new-api's Go encoder writes it: no spaces, non-ASCII as is.
        document = {"data": items, "object": "list", "success": True}
        bodies.append(json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode())
    return bodies


# A probe's answer: one completion token, as an OpenAI-style gateway sends it.
COMPLETION = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "H"},
                "finish_reason": "length",
            }
        ],
        "usage": {"prompt_tokens": 8, "completion_tokens": 1, "total_tokens": 9},
    }
).encode()
USAGE = json.dumps(
    {
        "code": True,
        "data": {
            "object": "token_usage",
            "name": "bench",
            "total_granted": 50_000_000,
            "total_used": 1_250_000,
            "total_available": 48_750_000,
            "unlimited_quota": False,
            "model_limits": {},
            "model_limits_enabled": False,
            "expires_at": 0,
        },
        "message": "",
    },
    separators=(",", ":"),
).encode()


def encode_pricing(models: Sequence[str]) -> bytes:
    data = [
        {
            "model_name": m,
            "quota_type": 0,
            "model_ratio": 1.25,
            "model_price": 0,
            "completion_ratio": 4,
            "enable_groups": ["default"],
            "supported_endpoint_types": ["openai"],
        }
        for m in models
    ]
    document = {"success": True, "data": data, "group_ratio": {"default": 1}}
    return json.dumps(document, separators=(",", ":")).encode()


class PlainGateway(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, models: int, latency: float, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.latency = latency
        self.names = [f"model-{i:05d}" for i in range(models)]
        self.bodies = encode_variants(self.names)
        self.pricing = encode_pricing(self.names)
        self.served = 0
        self.calls = 0  # probes' POSTs
        self._lock = threading.Lock()

    def add_model(self, name: str) -> None:
        self.names.append(name)
        self.bodies = encode_variants(self.names)

    def next_body(self) -> bytes:
        with self._lock:
            self.served += 1
            return self.bodies[self.served % len(self.bodies)]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real gateways
    # TCP_NODELAY, as Go's net/http sets it: without it the body waits for the client's
    # delayed ACK of the headers (about 40 ms on Linux) whenever it fits in one segment.
    disable_nagle_algorithm = True
    server: PlainGateway

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        public = path == "/api/pricing"  # new-api's pricing page needs no token
        if not public and not self.headers.get("Authorization", "").startswith("Bearer "):
            self.send_error(401)
            return
        if path in ("/v1/models", "/v1/models/"):
            body = self.server.next_body()
        elif path in ("/api/usage/token", "/api/usage/token/"):
            body = USAGE
        elif path == "/api/pricing":
            body = self.server.pricing
        else:
            self.send_error(404)
            return
        if self.server.latency:
            time.sleep(self.server.latency)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if self.path != "/v1/chat/completions":
            self.send_error(404)
            return
        with self.server._lock:
            self.server.calls += 1
        if self.server.latency:
            time.sleep(self.server.latency)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(COMPLETION)))
        self.end_headers()
        self.wfile.write(COMPLETION)

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--port", type=int, default=8400)
    args = parser.parse_args()
    server = PlainGateway(args.models, args.latency, args.port)
    print(f"http://127.0.0.1:{server.server_port}/v1", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
