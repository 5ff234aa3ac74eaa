"""A real SMTP server (aiosmtpd) on a free local port, and the inbox behind it."""

from __future__ import annotations

import email
import socket
import threading
from email.message import EmailMessage
from email.policy import default as default_policy

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


class Inbox:
    """What arrived: each message parsed, and every recipient. The first ``transient``
    messages are answered 451 (try again later)."""

    def __init__(self, transient: int = 0) -> None:
        self.messages: list[EmailMessage] = []
        self.to: list[str] = []
        self.senders: list[str] = []  # each message's envelope sender (MAIL FROM)
        self.transient = transient
        self.arrived = threading.Condition()  # notified after each message

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.transient:
            self.transient -= 1
            return "451 4.3.0 Try again later"
        assert isinstance(envelope.content, bytes)
        parsed = email.message_from_bytes(envelope.content, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        with self.arrived:
            self.messages.append(parsed)
            self.to += [str(a) for a in envelope.rcpt_tos]
            self.senders.append(str(envelope.mail_from))
            self.arrived.notify_all()
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 60) -> bool:
        """Block until ``count`` recipients have arrived (or the timeout: False)."""
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.to) >= count, timeout=timeout)


def start_smtp(inbox: Inbox) -> tuple[Controller, int]:
    """A running server for ``inbox`` and its port; the caller stops the controller."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    return controller, port
