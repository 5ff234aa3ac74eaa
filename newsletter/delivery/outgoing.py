"""The worker that drains the queue of transactional mail (``outgoing``), so that no web request
ever waits on a mail provider, and carries out the sign-ups the web queued.

``take_sign_ups`` carries out each queued sign-up (``subscriptions.sign_up``): the request only
checked the form and queued it, the same work whoever the address belongs to, so its timing
tells nobody who subscribed; the address is looked up here.

``drain`` sends what is due, one email at a time (a confirmation link, a welcome after
confirming, "you are already subscribed" to a confirmed address that signs up again): a
failure is retried with backoff (30 s, doubling, at most an hour apart) and given up after
``MAX_ATTEMPTS``; an email whose reader has left the status it was for (a confirmation for a
reader no longer pending, a welcome for one who left) is dropped. ``Worker`` runs
``take_sign_ups`` and ``drain`` (and, in another, the applying of provider events) in a thread
of the web process, woken at once by a new sign-up and every ``interval`` seconds otherwise.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import date, datetime, timedelta

from newsletter.config import Config
from newsletter.delivery.mailers import Mailer
from newsletter.edition.render import make_environment
from newsletter.errors import DeliveryError, NewsletterError, SubscriberError
from newsletter.models import (
    Batch,
    MailKind,
    Recipient,
    RenderedEmail,
    Subscriber,
    SubscriberStatus,
)
from newsletter.readers.links import (
    absolute,
    confirm_url,
    hello,
    preview_values,
    reader_values,
)
from newsletter.readers.subscriptions import sign_up
from newsletter.records import Outgoing
from newsletter.store import Store
from newsletter.store.claims import ClaimRule, claim_id

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
# a claimed email or sign-up is taken again once its worker died, or was silent this long (each
# is carried out within one request's timeout of being claimed: the claim is its only beat)
CLAIM = ClaimRule(timedelta(minutes=5))


# the status a reader must still have for each kind of email to go
_READER_STATUS = {
    MailKind.CONFIRMATION: SubscriberStatus.PENDING,
    MailKind.WELCOME: SubscriberStatus.CONFIRMED,
    MailKind.ALREADY_SUBSCRIBED: SubscriberStatus.CONFIRMED,
}
# each kind's subject and templates (NAME.html.j2 and NAME.txt.j2 in templates/)
_SUBJECTS = {
    MailKind.CONFIRMATION: ("Confirm your subscription to {}", "confirm"),
    MailKind.WELCOME: ("Welcome to {}", "welcome"),
    MailKind.ALREADY_SUBSCRIBED: ("You are already subscribed to {}", "already-subscribed"),
}


def editor_link_path(token: str) -> str:
    """The desk's page an editor's one-time link opens."""
    return f"/desk/set-password/{token}"


def retry_delay(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failure: 30 s, doubling, at most an hour."""
    return timedelta(seconds=min(3600, 30 * 2 ** max(0, attempts - 1)))


def drain(
    config: Config, store: Store, mailer: Mailer, *, now: Callable[[], datetime], limit: int = 50
) -> int:
    """Send the due emails; returns how many went."""
    sent, owner = 0, claim_id()
    for mail in store.outgoing.due_mail(rule=CLAIM, now=now(), limit=limit):
        if not store.outgoing.claim_mail(mail, owner, now=now()):
            continue  # another worker (another web process) has it
        if mail.subscriber_id is None:  # an editor's one-time link
            sent += _send_editor_link(config, store, mailer, mail, now=now)
            continue
        reader = store.readers.subscriber_by_id(mail.subscriber_id)
        wanted = _READER_STATUS.get(mail.kind, SubscriberStatus.PENDING)
        if reader is None or reader.status != wanted:
            store.outgoing.mail_failed(
                mail.id, error=f"the reader is no longer {wanted}", retry_at=None, now=now()
            )
            continue
        try:
            send_mail(config, mailer, reader, mail, day=now().date())
        except (NewsletterError, OSError, ValueError) as exc:
            attempts = mail.attempts + 1
            retry = now() + retry_delay(attempts) if attempts < MAX_ATTEMPTS else None
            error = getattr(exc, "message", str(exc))
            store.outgoing.mail_failed(mail.id, error=error, retry_at=retry, now=now())
            logger.warning("%s to reader %s failed (%s): %s", mail.kind, reader.id, attempts, error)
            continue
        store.outgoing.mail_sent(mail.id, now=now())
        sent += 1
    return sent


def _send_editor_link(
    config: Config, store: Store, mailer: Mailer, mail: Outgoing, *, now: Callable[[], datetime]
) -> int:
    """Send an editor's one-time link (dropped once it was used, replaced or expired, or its
    editor removed or disabled); returns 1 when it went."""
    link = store.editors.link_by_id(mail.editor_link_id or 0)
    editor = store.editors.editor_by_id(link.editor_id) if link else None
    token = store.editors.link_token(link.id) if link else None
    if link is None or editor is None or token is None or editor.disabled:
        drop = "the link or its editor is gone"
    elif link.used_at is not None or now() >= link.expires_at:
        drop = "the link was used, replaced or expired"
    else:
        drop = ""
    if drop:
        store.outgoing.mail_failed(mail.id, error=drop, retry_at=None, now=now())
        return 0
    assert editor is not None and link is not None and token is not None
    base = config.publication.base_url.rstrip("/")
    hours = (link.expires_at - link.created_at).total_seconds() / 3600
    values = {
        "greeting": f"Hello, {editor.name.split()[0]}." if editor.name.split() else "Hello.",
        "email": editor.email,
        "hours": f"{hours:g}",
        "link_url": absolute(base, editor_link_path(token)),
    }
    try:
        send_templated(config, mailer, editor.email, "editor-link", values, day=now().date())
    except (NewsletterError, OSError, ValueError) as exc:
        attempts = mail.attempts + 1
        retry = now() + retry_delay(attempts) if attempts < MAX_ATTEMPTS else None
        error = getattr(exc, "message", str(exc))
        store.outgoing.mail_failed(mail.id, error=error, retry_at=retry, now=now())
        logger.warning("the desk link to editor %s failed (%s): %s", editor.id, attempts, error)
        return 0
    store.outgoing.mail_sent(mail.id, now=now())
    return 1


def take_sign_ups(
    config: Config, store: Store, *, now: Callable[[], datetime], limit: int = 50
) -> int:
    """Carry out the queued sign-ups, oldest first, each at the time it was made (its consent
    event, its confirmation's hourly limit); returns how many."""
    done, owner = 0, claim_id()
    for queued in store.outgoing.due_signups(rule=CLAIM, now=now(), limit=limit):
        if not store.outgoing.claim_signup(queued, owner, now=now()):
            continue  # another worker (another web process) has it
        try:
            outcome = sign_up(
                config,
                store,
                address=queued.email,
                name=queued.name,
                sectors=queued.sectors,
                source=queued.source,
                now=queued.at,
                slot=queued.slot,
            )
        except SubscriberError as exc:  # a sector removed from the config since, ...
            outcome = f"dropped: {exc.message}"
        store.outgoing.signup_done(queued.id)
        logger.info("sign-up from %s: %s", queued.source, outcome)
        done += 1
    return done


class Worker:
    """``work`` (``take_sign_ups`` and ``drain``, or applying provider events) in a background
    thread of the web process: run at start, when woken by ``wake`` and every ``interval``
    seconds; stopped by ``stop``."""

    def __init__(self, work: Callable[[], object], *, name: str, interval: float = 5.0) -> None:
        self._work = work
        self._interval = interval
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self._work()
            except Exception:  # the worker must outlive any one failure; it is logged
                logger.exception("the %s worker failed; it goes on", self._thread.name)
            self._wake.wait(self._interval)
            self._wake.clear()


def send_mail(
    config: Config, mailer: Mailer, reader: Subscriber, mail: Outgoing, *, day: date
) -> None:
    """Render one transactional email from its templates and send it; ``SubscriberError``
    when the mailer refuses it."""
    kind = mail.kind
    subject, template = _SUBJECTS[kind]
    env = make_environment(config.templates_dir)
    names = {s.slug: s.name for s in config.sectors}
    base = config.publication.base_url.rstrip("/")
    values = reader_values(base, reader)
    context = {
        "publication": config.publication.name,
        "postal_address": config.publication.postal_address,
        "lang": config.publication.language,
        "sectors": [names[s] for s in mail.sectors if s in names],
        "confirm_url": confirm_url(base, reader.token),
        "archive_url": absolute(base, "/archive"),
        **values,
        "greeting": hello(reader),  # sent at any hour: the edition's "Good morning" would lie
    }
    email = RenderedEmail(
        subject=subject.format(config.publication.name),
        html=env.get_template(f"{template}.html.j2").render(context),
        text=env.get_template(f"{template}.txt.j2").render(context),
    )
    recipient = Recipient(0, reader, values)
    result = mailer.send_batch(Batch(email, (recipient,), 0, day, kind=kind))
    if result.failed:
        raise SubscriberError(
            f"the {kind} email could not be sent: {result.failed[0]}",
            hint="Check the delivery settings in the config.",
        )


def send_templated(
    config: Config,
    mailer: Mailer,
    address: str,
    template: str,
    values: dict[str, str],
    *,
    day: date,
) -> None:
    """An email to one address outside the list (an editor's), from ``TEMPLATE.html.j2`` and
    ``.txt.j2``; ``DeliveryError`` when the mailer refuses it."""
    env = make_environment(config.templates_dir)
    context = {
        "publication": config.publication.name,
        "postal_address": config.publication.postal_address,
        "lang": config.publication.language,
        **values,
    }
    email = RenderedEmail(
        subject=f"Your password for the desk of {config.publication.name}",
        html=env.get_template(f"{template}.html.j2").render(context),
        text=env.get_template(f"{template}.txt.j2").render(context),
    )
    # the mailers give every copy List-Unsubscribe headers; an editor's has nothing to leave
    recipient = Recipient(0, Subscriber(0, address), preview_values(config.publication.base_url))
    result = mailer.send_batch(Batch(email, (recipient,), 0, day, kind=MailKind.EDITOR_LINK))
    if result.failed:
        raise DeliveryError(
            f"the email to {address} could not be sent: {result.failed[0]}",
            reader=address,
            hint="Check the delivery settings in the config.",
        )
