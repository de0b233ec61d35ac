"""Standard Webhooks signatures (standardwebhooks.com).

signature = base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}")), sent as
`v1,<signature>`; several space-separated entries let receivers rotate secrets.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable

PREFIX = "whsec_"


class SigningSecretError(ValueError):
    pass


def secret_key(secret: str) -> bytes:
    """The HMAC key: the base64 bytes after `whsec_` (a bare base64 string is accepted too)."""
    encoded = secret.removeprefix(PREFIX)
    encoded += "=" * (-len(encoded) % 4)  # tolerate unpadded secrets, as receivers do
    try:
        return base64.b64decode(encoded, validate=True)
    except ValueError as exc:
        raise SigningSecretError("a webhook secret must be 'whsec_' followed by base64") from exc


def sign(secrets: Iterable[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value, one `v1,` entry per secret."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    entries = []
    for secret in secrets:
        digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
        entries.append("v1," + base64.b64encode(digest).decode())
    return " ".join(entries)
