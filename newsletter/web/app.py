"""The readers' web app (``newsletter serve``): sign-up, confirm, preferences, unsubscribe,
SendGrid's Event Webhook (``web.webhook``), the public archive (``web.archive``) and the
editor's desk (``web.desk``).

Plain server-rendered pages that work without JavaScript. A GET never changes a subscription
(link scanners follow every link): confirming and unsubscribing take a POST. Forms carry a CSRF
token (double-submit cookie), except the RFC 8058 one-click unsubscribe POST, which mail
providers send without cookies. Sign-up has a honeypot field and per-address and per-IP limits,
and always answers "check your inbox", so nobody can learn who subscribed; nor from its timing:
the request only checks the form and queues the sign-up, the same work for any address, and the
worker thread looks the address up afterwards. Every field has a length limit; bodies are
capped. An unknown token gets a plain 404 that reveals nothing.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from newsletter.config import Config
from newsletter.delivery.events import apply_events
from newsletter.delivery.mailers import Mailer
from newsletter.delivery.outgoing import Worker, drain, take_sign_ups
from newsletter.errors import SubscriberError
from newsletter.models import Channel, Source, Subscriber, SubscriberStatus
from newsletter.readers import subscriptions
from newsletter.readers.links import confirm_path, preferences_path, unsubscribe_path
from newsletter.readers.timing import describe, slot_from
from newsletter.store import Store
from newsletter.web import forms
from newsletter.web.archive import Archive
from newsletter.web.desk import make_desk
from newsletter.web.forms import BadRequest, body_of, chosen, client_ip, form_of, one
from newsletter.web.pages import ARCHIVE, STOPPED, Link, Pages, new_csrf, onward, plain_routes
from newsletter.web.ratelimit import RateLimit
from newsletter.web.webhook import Webhook

logger = logging.getLogger(__name__)


class Site:
    """The readers' pages, one handler per URL and method (see ``routes``)."""

    def __init__(
        self, config: Config, store: Store, worker: Worker, *, now: Callable[[], datetime]
    ) -> None:
        self.config, self.store, self.worker, self.now = config, store, worker, now
        self.pages = Pages(config)
        self.trusted = frozenset(config.file.signup.trusted_proxies)
        signup = config.file.signup
        self.per_ip = RateLimit(signup.per_ip, signup.rate_limit_storage, store=store, now=now)
        self.wording = subscriptions.consent_wording(config.publication.name)
        self.name = config.publication.name

    def routes(self) -> list[Route]:
        return [
            Route("/", self.subscribe, methods=["GET"]),
            Route("/subscribe", self.subscribe, methods=["GET"]),
            Route("/subscribe", self.subscribe_post, methods=["POST"]),
            # the sign-up box of the public pages and `newsletter embed`'s form: no CSRF cookie
            Route("/embed/subscribe", self.embed_subscribe_post, methods=["POST"]),
            Route("/confirm/{token}", self.confirm_page, methods=["GET"]),
            Route("/confirm/{token}", self.confirm_post, methods=["POST"]),
            Route("/confirm/{token}/renew", self.renew_post, methods=["POST"]),
            Route("/preferences/{token}", self.preferences_page, methods=["GET"]),
            Route("/preferences/{token}", self.preferences_post, methods=["POST"]),
            Route("/resubscribe/{token}", self.resubscribe_post, methods=["POST"]),
            Route("/unsubscribe/{token}", self.unsubscribe_page, methods=["GET"]),
            Route("/unsubscribe/{token}", self.unsubscribe_post, methods=["POST"]),
        ]

    def reader(self, request: Request) -> tuple[str, Subscriber | None]:
        """The token in the URL and its reader (None: answer ``Pages.unknown_link``)."""
        token = request.path_params["token"]
        return token, self.store.readers.subscriber_by_token(token)

    def source(self, request: Request) -> Source:
        return Source(Channel.WEB, client_ip(request, self.trusted))

    def onward(self, token: str = "") -> list[Link]:
        """The next steps a page offers (a query: call it from the thread pool)."""
        return onward(self.store.editions.latest_published_date(), token=token)

    def _form(self, status: int = 200, **values: object) -> Response:
        """The sign-up page (a query for the latest edition: call it from the thread pool)."""
        return self.pages.page(
            "subscribe.html.j2",
            f"Subscribe to {self.name}",
            status,
            csrf=new_csrf(),
            consent=self.wording,
            latest=self.store.editions.latest_published_date(),
            **values,
        )

    def subscribe(self, request: Request) -> Response:
        return self._form(chosen=[], email="", name="", when={})

    async def subscribe_post(self, request: Request) -> Response:
        return await self._sign_up(request, csrf=True)

    async def embed_subscribe_post(self, request: Request) -> Response:
        """A sign-up from a cached public page or another site: no CSRF cookie can come with
        it. A sign-up acts on nobody's session (it only asks the address to confirm), so the
        honeypot, the per-IP limit and the double opt-in are what protect it."""
        return await self._sign_up(request, csrf=False)

    async def _sign_up(self, request: Request, *, csrf: bool) -> Response:
        message = self.pages.message
        try:
            fields = await form_of(request, csrf=csrf)
            email = one(fields, "email", subscriptions.MAX_EMAIL)
            name = one(fields, "name", subscriptions.MAX_NAME_TYPED)
            sectors = chosen(fields)
            trap = one(fields, "website", 200)
            when = forms.when_of(fields)
        except BadRequest as exc:
            return self.pages.refused(exc, back="/subscribe")
        links = await run_in_threadpool(self.onward)  # for a bot too: the same work for all
        done = message(
            "Check your inbox",
            "If this address can subscribe, a message with a confirmation link is on its way.",
            "Open it and press the button to confirm. Nothing is sent until you do.",
            links=links,
        )
        if trap:  # a bot filled the hidden field: look the same, do nothing
            return done
        source = self.source(request)
        try:
            blocked = await run_in_threadpool(self._accept, source, email, name, sectors, when)
        except SubscriberError as exc:
            retry: dict[str, object] = {"chosen": sectors, "email": email, "name": name}
            retry |= {"error": exc.message, "when": when}
            return await run_in_threadpool(lambda: self._form(400, **retry))
        if blocked is not None:
            return self.pages.too_many_sign_ups(blocked - self.now(), links)
        self.worker.wake()  # it looks the address up and carries the sign-up out
        return done

    def _accept(
        self, source: Source, email: str, name: str, sectors: list[str], when: dict[str, str]
    ) -> datetime | None:
        """Queue a sign-up unless its client is over the limit (only accepted ones count):
        the same statements whoever the address belongs to, since nothing here looks at it.
        Over the limit: when it may try again; ``SubscriberError`` for a form to correct."""
        if self.per_ip.blocked(source.detail):
            return self.per_ip.retry_at(source.detail)
        slot = slot_from(when, self.config.file.schedule)
        subscriptions.request_sign_up(
            self.config,
            self.store,
            slot=slot,
            address=email,
            name=name,
            sectors=sectors,
            source=source,
            now=self.now(),
        )
        self.per_ip.record(source.detail)
        logger.info("sign-up from %s queued", source)
        return None

    def confirm_page(self, request: Request) -> Response:
        token, reader = self.reader(request)
        if reader is None:
            return self.pages.unknown_link()
        if reader.status == SubscriberStatus.CONFIRMED:
            return self.pages.message(
                "You are subscribed", f"{reader.email} gets {self.name}.", links=self.onward(token)
            )
        if subscriptions.confirmation_expired(self.config, self.store, reader, self.now()):
            return self.pages.expired(token)
        return self.pages.message(
            "Confirm your subscription",
            f"Press the button to start getting {self.name} at {reader.email}.",
            action=confirm_path(token),
            button="Confirm my subscription",
            csrf=new_csrf(),
        )

    async def confirm_post(self, request: Request) -> Response:
        token, current = await run_in_threadpool(self.reader, request)
        if current is None:
            return self.pages.unknown_link()
        try:
            await form_of(request)
        except BadRequest as exc:
            return self.pages.refused(exc, back=confirm_path(token))
        return await run_in_threadpool(self._confirm, request, token, current)

    def _confirm(self, request: Request, token: str, current: Subscriber) -> Response:
        if current.status in (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED):
            return self._stopped(token, current)  # an old link subscribes no one who stopped
        if subscriptions.confirmation_expired(self.config, self.store, current, self.now()):
            return self.pages.expired(token)
        reader = subscriptions.confirm(
            self.store, token, source=self.source(request), now=self.now()
        )
        self.worker.wake()  # the welcome email
        return self.pages.message(
            "You are subscribed",
            f"{reader.email} will get {self.name} from the next edition.",
            "Every email has a link to change your sectors or unsubscribe.",
            links=self.onward(token),
        )

    async def renew_post(self, request: Request) -> Response:
        token, reader = await run_in_threadpool(self.reader, request)
        if reader is None:
            return self.pages.unknown_link()
        try:
            await form_of(request)
        except BadRequest as exc:
            return self.pages.refused(exc, back=confirm_path(token))
        if reader.status == SubscriberStatus.PENDING:
            await run_in_threadpool(
                subscriptions.renew_confirmation, self.store, reader, now=self.now()
            )
            self.worker.wake()
        links = await run_in_threadpool(self.onward)
        return self.pages.message(
            "Check your inbox", "A new confirmation link is on its way.", links=links
        )

    def preferences_page(self, request: Request) -> Response:
        token, reader = self.reader(request)
        if reader is None:
            return self.pages.unknown_link()
        if reader.status in STOPPED:
            return self._stopped(token, reader, said=self.pages.no_preferences(reader))
        return self.pages.preferences(token, reader, self.store.editions.latest_published_date())

    def _stopped(
        self, token: str, reader: Subscriber, said: str = "", status: int = 200
    ) -> Response:
        """The page of a reader who gets nothing, with the way back in where there is one."""
        why = self.store.readers.suppression_reason(reader.email)
        return self.pages.unsubscribed(
            token, reader, self.wording, said=said, suppressed=why, status=status
        )

    async def preferences_post(self, request: Request) -> Response:
        token, current = await run_in_threadpool(self.reader, request)
        if current is None:
            return self.pages.unknown_link()
        if current.status in STOPPED:  # saving would change nothing
            return self._stopped(token, current, self.pages.no_preferences(current), status=409)
        try:
            fields = await form_of(request)
            when, terms = forms.when_of(fields), one(fields, "watchlist", forms.MAX_WATCHLIST_TYPED)
            forms.typed_reader(current, fields)  # the name and sectors within the form's limits
        except BadRequest as exc:
            return self.pages.refused(exc, back=preferences_path(token))
        fields = {**fields, "watchlist": [terms]}
        return await run_in_threadpool(self._preferences, request, token, fields, when)

    def _preferences(
        self, request: Request, token: str, fields: dict[str, list[str]], when: dict[str, str]
    ) -> Response:
        try:
            reader = subscriptions.change_preferences(
                self.store,
                token,
                name=one(fields, "name", subscriptions.MAX_NAME_TYPED),
                sectors=chosen(fields),
                known_sectors=self.config.sector_slugs,
                source=self.source(request),
                now=self.now(),
                slot=slot_from(when, self.config.file.schedule),
                watchlist=fields["watchlist"][0],  # split at commas, semicolons, lines
            )
        except SubscriberError as exc:  # the form again, as typed, with what to correct
            current = self.store.readers.subscriber_by_token(token)
            if current is None:
                return self.pages.unknown_link()
            latest = self.store.editions.latest_published_date()
            typed = forms.typed_reader(current, fields)
            return self.pages.preferences(token, typed, latest, when=when, refused=exc)
        names = [s.name for s in self.config.sectors if s.slug in reader.sectors]
        at = describe(reader.slot, self.config.file.schedule)
        return self.pages.message(
            "Preferences saved",
            f"You will get: {', '.join(names) if names else 'every sector'}, {at}.",
            "The change applies from the next edition.",
            links=self.onward(token),
        )

    async def resubscribe_post(self, request: Request) -> Response:
        token, current = await run_in_threadpool(self.reader, request)
        if current is None:
            return self.pages.unknown_link()
        try:
            await form_of(request)
        except BadRequest as exc:
            return self.pages.refused(exc, back=preferences_path(token))
        return await run_in_threadpool(self._resubscribe, request, token)

    def _resubscribe(self, request: Request, token: str) -> Response:
        try:
            reader = subscriptions.resubscribe(
                self.store,
                token,
                publication=self.name,
                source=self.source(request),
                now=self.now(),
            )
        except SubscriberError as exc:
            return self.pages.message(
                "That did not work", exc.message, exc.hint or "", status=400, links=[ARCHIVE]
            )
        return self.pages.message(
            "You are subscribed again",
            f"{reader.email} will get {self.name} from the next edition.",
            "The link in every email lets you change your sectors.",
            links=self.onward(token),
        )

    def unsubscribe_page(self, request: Request) -> Response:
        token, reader = self.reader(request)
        if reader is None:
            return self.pages.unknown_link()
        if reader.status == SubscriberStatus.UNSUBSCRIBED:
            return self._stopped(token, reader)
        return self.pages.message(
            "Unsubscribe",
            f"Press the button to stop {self.name} at {reader.email}.",
            action=unsubscribe_path(token),
            button="Unsubscribe",
            quiet=True,
            links=[("Change your sectors instead", preferences_path(token))],
        )

    async def unsubscribe_post(self, request: Request) -> Response:
        # RFC 8058: the provider posts List-Unsubscribe=One-Click with no cookie; answer 200.
        token, current = await run_in_threadpool(self.reader, request)
        if current is None:
            return self.pages.unknown_link()
        try:
            await body_of(request)  # any encoding: RFC 8058 asks for multipart/form-data
        except BadRequest as exc:
            return self.pages.refused(exc, back=unsubscribe_path(token))
        source, now = self.source(request), self.now()
        reader = await run_in_threadpool(
            subscriptions.unsubscribe, self.store, token, source=source, now=now
        )
        return await run_in_threadpool(self._stopped, token, reader)


def create_app(
    config: Config,
    store: Store,
    mailer: Mailer,
    *,
    now: Callable[[], datetime],
    worker_interval: float = 5.0,
) -> Starlette:
    """The readers' app over one store and mailer (``now``: the clock); a worker thread works
    through the sign-up and mail queues while it runs (every ``worker_interval`` s, at once)."""

    def queued_work() -> None:
        take_sign_ups(config, store, now=now)  # first: the confirmations they queue go at once
        drain(config, store, mailer, now=now)

    worker = Worker(queued_work, name="outgoing-mail", interval=worker_interval)
    applier = Worker(
        lambda: apply_events(config, store, now=now()), name="events", interval=worker_interval
    )
    site = Site(config, store, worker, now=now)
    webhook = Webhook(config, store, applier, now=now)
    archive = Archive(config, store, now=now)
    desk = make_desk(config, store, now=now, wake=worker.wake)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        worker.start()
        applier.start()
        try:
            yield
        finally:
            worker.stop()
            applier.stop()

    routes = [*site.routes(), *plain_routes(), *webhook.routes(), *archive.routes(), *desk.routes]
    handlers = {404: archive.unknown, 405: desk.wrong_method}
    app = Starlette(lifespan=lifespan, routes=routes, exception_handlers=handlers)
    app.router.redirect_slashes = False  # Starlette's names http://host/ behind a proxy
    return app
