"""Loopback stand-ins for the outside world: a gateway to poll and a webhook receiver.

Used by `model-monitor demo`, by the tests and by the benchmarks; nothing here talks
to the internet. The gateway speaks every format in `WIRE_FORMATS` (new-api, one-api,
openai, anthropic, gemini, openrouter, litellm, ollama), chosen by its `flavor`.
"""

from monitor.sim.gateway import Fault, GatewaySimulator, RequestLog, fingerprint, make_model
from monitor.sim.receiver import Received, WebhookReceiver
from monitor.sim.wire import WIRE_FORMATS, WireFormat

__all__ = [
    "WIRE_FORMATS",
    "Fault",
    "GatewaySimulator",
    "Received",
    "RequestLog",
    "WebhookReceiver",
    "WireFormat",
    "fingerprint",
    "make_model",
]
