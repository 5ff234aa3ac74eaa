"""SMTP: a few connections kept open for the whole send (``parallel``, one per request in
flight), STARTTLS or TLS, transient 4xx answers retried."""

from __future__ import annotations

import contextlib
import logging
import smtplib
import ssl
import threading
from collections.abc import Callable

from newsletter.config.settings import SmtpConfig
from newsletter.delivery.mailers.message import personal_messages, reader_tag, rehearsed
from newsletter.delivery.mailers.retry import Transient, retrying
from newsletter.errors import DeliveryError, MailerSetupError
from newsletter.models import Batch, BatchResult, Recipient

logger = logging.getLogger(__name__)

_SETTINGS = SmtpConfig()  # the one source of the defaults below: ``delivery.smtp``


def _unreachable(server: str, exc: Exception) -> DeliveryError:
    return DeliveryError(
        f"cannot connect to {server}: {exc}",
        hint="Check delivery.smtp.host, port and security in the config.",
    )


class _Unreachable(Transient):
    """The server could not be reached (tried again; raised as its ``DeliveryError`` last)."""

    def __init__(self, error: DeliveryError) -> None:
        super().__init__(error.message)
        self.error = error


class _Stopped(Exception):
    """A stop was asked for: the message was not tried (again)."""


class SmtpMailer:
    name = "smtp"
    max_batch = 100

    def __init__(
        self,
        *,
        host: str,
        port: int,
        security: str = _SETTINGS.security,
        username: str | None = None,
        password: str | None = None,
        from_address: str,
        timeout: float = _SETTINGS.timeout_seconds,
        retries: int = _SETTINGS.max_retries,
        backoff: float = _SETTINGS.backoff_seconds,
        parallel: int = _SETTINGS.connections,
        sleep: Callable[[float], None] | None = None,
        list_id: str = "",
        return_path: str | None = None,
        stopping: threading.Event | None = None,
        tag_key: bytes = b"",
    ) -> None:
        self.host, self.port, self.security = host, port, security
        self.username, self._password = username, password
        self.from_address, self.list_id, self.return_path = from_address, list_id, return_path
        self.tag_key = tag_key  # signs the reader a bounce names (``message.reader_tag``)
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self.parallel = parallel
        self._smtp: smtplib.SMTP | None = None
        # shared with the mailers ``another()`` makes: one stop stops every connection
        self._stopping = stopping or threading.Event()
        self._given_sleep = sleep
        # a wait between retries ends early on a stop (tests give their own sleep)
        self._sleep = sleep or self._stopping.wait

    def another(self) -> SmtpMailer:
        """A mailer with its own connection, for another batch in flight."""
        return SmtpMailer(
            host=self.host,
            port=self.port,
            security=self.security,
            username=self.username,
            password=self._password,
            from_address=self.from_address,
            timeout=self.timeout,
            retries=self.retries,
            backoff=self.backoff,
            parallel=self.parallel,
            sleep=self._given_sleep,
            list_id=self.list_id,
            return_path=self.return_path,
            stopping=self._stopping,
            tag_key=self.tag_key,
        )

    def stop(self) -> None:
        self._stopping.set()

    def _verp_id(self, recipient: Recipient) -> str:
        """The reader's id in a VERP return path, signed as a Message-ID names them."""
        reader = recipient.subscriber_id
        return f"{reader}-{reader_tag(self.tag_key, 0, reader)}" if self.tag_key else str(reader)

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is not None:
            return self._smtp
        server = f"SMTP server {self.host}:{self.port}"
        try:
            if self.security == "tls":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
                )
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        except ssl.SSLError as exc:
            raise MailerSetupError(
                f"{server} did not answer in TLS ({exc.reason or exc})",
                hint="delivery.smtp.security tls is for a server that starts in TLS (port "
                "465); use starttls (port 587) or none for one that starts in plain text.",
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise _unreachable(server, exc) from None
        try:
            self._set_up(smtp, server)
        except BaseException:
            smtp.close()
            raise
        self._smtp = smtp
        return smtp

    def _set_up(self, smtp: smtplib.SMTP, server: str) -> None:
        """STARTTLS and the login, as configured: a server that offers neither, or refuses
        the login, is a setting to change (``MailerSetupError``), not an outage."""
        try:
            if self.security == "starttls":
                try:
                    smtp.starttls(context=ssl.create_default_context())
                except smtplib.SMTPNotSupportedError:
                    raise MailerSetupError(
                        f"{server} does not offer STARTTLS",
                        hint="Set delivery.smtp.security to none for a relay that offers no "
                        "TLS, or to tls for a server that starts in TLS (port 465).",
                    ) from None
            if self.username:
                try:
                    smtp.login(self.username, self._password or "")
                except smtplib.SMTPNotSupportedError:
                    raise MailerSetupError(
                        f"{server} offers no login (AUTH)",
                        hint="Remove delivery.smtp.username for a relay that needs none; a "
                        "server may offer AUTH only after STARTTLS (delivery.smtp.security).",
                    ) from None
        except smtplib.SMTPAuthenticationError as exc:
            raise MailerSetupError(
                f"{server} refused the login: {exc.smtp_code}",
                hint="Check delivery.smtp.username and the password in its environment variable.",
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise _unreachable(server, exc) from None

    def send_batch(self, batch: Batch) -> BatchResult:
        if batch.dry_run:  # sends nothing
            return rehearsed(batch, self.from_address, self.list_id)
        sent: dict[int, str] = {}
        failed: dict[int, str] = {}
        order = [r.delivery_id for r in batch.recipients]
        messages = personal_messages(
            batch, self.from_address, failed, self.list_id, tag_key=self.tag_key
        )
        for recipient, message in messages:
            # the envelope sender bounces go back to; "{id}" there is the reader's (VERP)
            envelope = (self.return_path or "").replace("{id}", self._verp_id(recipient))
            try:
                if self._stopping.is_set():
                    raise _Stopped
                error = self._send(message, envelope or None)
            except MailerSetupError:  # a setting to change: the send stops at once
                raise
            except (DeliveryError, _Stopped) as exc:  # what the server accepted stays sent
                done = set(sent) | set(failed)
                unsent = tuple(d for d in order if d not in done)
                stopped = isinstance(exc, _Stopped)
                reason = "asked to stop" if stopped else str(exc)
                return BatchResult(sent, failed, unsent=unsent, stop_reason=reason, stopped=stopped)
            if error is None:
                sent[recipient.delivery_id] = str(message["Message-ID"])
            else:
                failed[recipient.delivery_id] = error
        return BatchResult(sent=sent, failed=failed)

    def _send(self, message: object, envelope: str | None = None) -> str | None:
        """None when sent; else why not. 4xx answers and dropped connections are retried with
        backoff; ``DeliveryError`` when the server cannot be reached again."""
        try:
            for attempt in retrying(
                attempts=self.retries + 1, backoff=self.backoff, sleep=self._sleep
            ):
                with attempt:
                    if attempt.retry_state.attempt_number > 1 and self._stopping.is_set():
                        raise _Stopped  # no retry once a stop is asked
                    return self._try_send(message, envelope)
        except _Unreachable as exc:
            raise exc.error from None
        except Transient as exc:
            return str(exc)
        raise AssertionError("not reached: the last try returns or raises")

    def _try_send(self, message: object, envelope: str | None) -> str | None:
        """One try: None when sent, the reason when refused for good; ``Transient`` else."""
        try:
            connection = self._connection()
        except MailerSetupError:  # another try changes nothing
            raise
        except DeliveryError as exc:
            raise _Unreachable(exc) from None
        try:
            connection.send_message(message, from_addr=envelope)  # type: ignore[arg-type]
            return None
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            if all(500 <= code < 600 for code in codes):
                return f"refused: {exc.recipients}"
            raise Transient(f"refused for now: {exc.recipients}") from None
        except smtplib.SMTPResponseException as exc:
            if 500 <= exc.smtp_code < 600:
                return f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"
            raise Transient(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from None
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._smtp = None
            raise Transient(f"connection lost: {exc}") from None

    def close(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self._smtp.quit()
            self._smtp = None
