"""Mailers: send one rendered variant to a batch of readers.

``Mailer`` is the protocol; ``outbox`` (files, the default), ``smtp`` and ``sendgrid`` implement
it. Each takes the variant with its placeholders and the batch's readers, and fills in each
reader's values (or has SendGrid do it); none of them touches the ledger.
"""

from __future__ import annotations

import os
from typing import Protocol

from newsletter.config import Config
from newsletter.errors import ConfigError
from newsletter.models import Batch, BatchResult


class Mailer(Protocol):
    name: str
    max_batch: int  # readers per send_batch call
    parallel: int  # send_batch calls in flight at once, each with its own ``another()``

    def send_batch(self, batch: Batch) -> BatchResult:
        """Send one variant to each recipient; a fatal problem raises ``DeliveryError``."""
        ...

    def another(self) -> Mailer:
        """A mailer for one more call in flight (itself, when it can serve several at once)."""
        ...

    def stop(self) -> None:
        """Finish the message or request under way and start nothing more (no retry, no next
        message, no wait for a rate limit), in this mailer and those ``another()`` made; the
        readers not tried come back as ``unsent`` with ``stopped`` set."""
        ...

    def close(self) -> None: ...


def make_mailer(config: Config) -> Mailer:
    """The mailer the config asks for, with its secret read from the environment."""
    delivery = config.file.delivery
    if delivery.backend == "outbox":
        from newsletter.delivery.mailers.outbox import OutboxMailer

        return OutboxMailer(
            config.outbox_dir,
            from_address=delivery.from_address,
            parallel=delivery.outbox.parallel,
            list_id=config.list_id,
            tag_key=config.privacy_key(),
        )
    if delivery.backend == "smtp":
        from newsletter.delivery.mailers.smtp import SmtpMailer

        smtp = delivery.smtp
        password = os.environ.get(smtp.password_env) if smtp.username else None
        if smtp.username and not password:
            raise ConfigError(
                f"{config.path}: delivery.smtp: the password is not set",
                hint=f"Set the environment variable {smtp.password_env} to the SMTP password.",
            )
        return SmtpMailer(
            host=smtp.host,
            port=smtp.port,
            security=smtp.security,
            username=smtp.username,
            password=password,
            from_address=delivery.from_address,
            timeout=smtp.timeout_seconds,
            retries=smtp.max_retries,
            backoff=smtp.backoff_seconds,
            parallel=smtp.connections,
            list_id=config.list_id,
            return_path=smtp.return_path,
            tag_key=config.privacy_key(),
        )
    from newsletter.delivery.mailers.sendgrid import SendgridMailer

    sendgrid = delivery.sendgrid
    key = os.environ.get(sendgrid.api_key_env)
    if not key:
        raise ConfigError(
            f"{config.path}: delivery.sendgrid: no API key",
            hint=f"Set the environment variable {sendgrid.api_key_env} to your SendGrid API key.",
        )
    return SendgridMailer(
        api_key=key,
        api_host=sendgrid.api_host,
        from_address=delivery.from_address,
        timeout=sendgrid.timeout_seconds,
        max_retries=sendgrid.max_retries,
        backoff=sendgrid.backoff_seconds,
        parallel=sendgrid.concurrency,
        list_id=config.list_id,
        track_opens=sendgrid.track_opens,
        track_clicks=sendgrid.track_clicks,
    )
