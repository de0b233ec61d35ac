"""What peers send back is read with a bound: a gzip bomb costs kilobytes, not gigabytes.

A delivery target (webhook, Slack) and a gateway answer about 1 MB of gzip that inflates
to 1 GiB. The sender runs in a subprocess whose peak memory is measured.
"""

from __future__ import annotations

import functools
import subprocess
import sys
import textwrap
import zlib

import pytest

from tests.support.misbehaving import answer, misbehaving

INFLATED = 1024 * 1024 * 1024  # 1 GiB of zeros
PEAK_LIMIT_KB = 200 * 1024  # far below what reading the bomb whole would take


@functools.cache
def _bomb() -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
    block = bytes(1024 * 1024)
    parts = [compressor.compress(block) for _ in range(INFLATED // len(block))]
    parts.append(compressor.flush())
    return b"".join(parts)


SEND = {
    "webhook": """
        from monitor.config.model import ChannelConfig, Secret
        from monitor.delivery.base import Message
        from monitor.delivery.samples import sample_test
        from monitor.delivery.webhook import WebhookChannel
        event = sample_test("x")
        channel = WebhookChannel(ChannelConfig("x", "webhook", options={"url": Secret(URL)}))
        result = channel.send(Message("dlv_1", event.id, event.to_payload()))
        print(result.ok, result.status, len(result.error or ""))
    """,
    "slack": """
        from monitor.config.model import ChannelConfig, Secret
        from monitor.delivery.base import Message
        from monitor.delivery.samples import sample_test
        from monitor.delivery.slack import SlackChannel
        event = sample_test("x")
        channel = SlackChannel(ChannelConfig("x", "slack", options={"url": Secret(URL)}))
        result = channel.send(Message("dlv_1", event.id, event.to_payload()))
        print(result.ok, result.status, len(result.error or ""))
    """,
    "gateway": """
        from monitor.config.model import MonitorSettings, Secret, SourceConfig, TokenConfig
        from monitor.sources.fetch import fetch_models
        source = SourceConfig("gw", URL.removesuffix("/models"), "openai")
        result = fetch_models(source, TokenConfig("t", "gw", Secret("sk-bomb")), MonitorSettings())
        print(type(result).__name__, getattr(result, "kind", ""), result.status)
    """,
}


@pytest.mark.slow
@pytest.mark.parametrize(("target", "status"), [("webhook", 500), ("slack", 200), ("gateway", 200)])
def test_a_gzip_bomb_is_read_with_a_bound(target: str, status: int) -> None:
    bomb = _bomb()
    assert len(bomb) < 1_100_000
    reply = answer(status, bomb, {"Content-Encoding": "gzip", "Content-Type": "application/json"})
    with misbehaving({"/": reply}) as server:
        url = f"{server.url}/v1/models" if target == "gateway" else f"{server.url}/hook"
        script = (
            f"URL = {url!r}\n"
            + textwrap.dedent(SEND[target])
            + textwrap.dedent(
                """
            # VmHWM: this process's own peak (ru_maxrss would count the forked parent's).
            status = open("/proc/self/status").read()
            print(next(l.split()[1] for l in status.splitlines() if l.startswith("VmHWM:")))
            """
            )
        )
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 0, done.stderr
    outcome, peak = done.stdout.split("\n")[:2]
    assert int(peak) < PEAK_LIMIT_KB, (outcome, peak)
    if target == "gateway":
        assert outcome == "FetchError too_large 200"  # over max_response_bytes, inflated
    elif target == "slack":
        assert outcome.startswith("False 200")  # a 200 that is not "ok" is no success
    else:
        assert outcome.startswith("False 500")
