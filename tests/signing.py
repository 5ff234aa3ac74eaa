"""A test ECDSA P-256 key pair that signs Event Webhook batches as SendGrid does."""

from __future__ import annotations

import base64
import json
from datetime import datetime

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


class SigningKey:
    def __init__(self) -> None:
        self._private = ec.generate_private_key(ec.SECP256R1())
        der = self._private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public = base64.b64encode(der).decode()  # as SendGrid shows it

    def signed(self, events: object, at: datetime) -> tuple[bytes, dict[str, str]]:
        """The body and the headers SendGrid would post for ``events`` at ``at``."""
        body = json.dumps(events).encode()
        stamp = str(int(at.timestamp()))
        signature = self._private.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return body, {
            "Content-Type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
        }
