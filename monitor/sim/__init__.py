"""Loopback stand-ins for the outside world: a gateway to poll and a webhook receiver.

Used by `model-monitor demo`, by the tests and by the benchmarks; nothing here talks
to the internet.
"""

from monitor.sim.gateway import Fault, GatewaySimulator, RequestLog, fingerprint, make_model
from monitor.sim.receiver import Received, WebhookReceiver

__all__ = [
    "Fault",
    "GatewaySimulator",
    "Received",
    "RequestLog",
    "WebhookReceiver",
    "fingerprint",
    "make_model",
]
