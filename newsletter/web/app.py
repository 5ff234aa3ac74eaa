"""The readers' web app (``newsletter serve``): sign-up, confirm, preferences, unsubscribe.

Plain server-rendered pages that work without JavaScript. A GET never changes a subscription
(link scanners follow every link): confirming and unsubscribing take a POST. Forms carry a CSRF
token (double-submit cookie), except the RFC 8058 one-click unsubscribe POST, which mail
providers send without cookies. Sign-up has a honeypot field and per-address and per-IP limits,
and always answers "check your inbox", so nobody can learn who subscribed. Every field has a
length limit; bodies are capped. An unknown token gets a plain 404 that reveals nothing.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from newsletter import subscriptions
from newsletter.config import Config
from newsletter.errors import SubscriberError, TemplateError
from newsletter.mailers import Mailer
from newsletter.models import SubscriberStatus
from newsletter.outgoing import Worker
from newsletter.render import make_environment, render_page
from newsletter.store import Store

logger = logging.getLogger(__name__)

MAX_BODY = 16 * 1024  # bytes of a form post
MAX_SECTORS = 20
SIGNUPS_PER_IP = 5  # per window
SIGNUP_WINDOW = 600.0  # seconds
CSRF_COOKIE = "csrf"
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",  # tokens live in URLs
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
}


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class RateLimit:
    """At most ``limit`` events per key within ``window`` seconds (in memory, per process)."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic):
        self.limit, self.window, self.clock = limit, window, clock
        self._seen: defaultdict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def blocked(self, key: str) -> bool:
        """Whether ``key`` has used up its events in the window (nothing is counted)."""
        now = self.clock()
        with self._lock:
            times = self._seen[key]
            while times and now - times[0] > self.window:
                times.popleft()
            return len(times) >= self.limit

    def record(self, key: str) -> None:
        """Count one event for ``key`` (a sign-up that was accepted)."""
        with self._lock:
            self._seen[key].append(self.clock())

    def allow(self, key: str) -> bool:
        if self.blocked(key):
            return False
        self.record(key)
        return True


def create_app(
    config: Config,
    store: Store,
    mailer: Mailer,
    *,
    now: Callable[[], datetime],
    worker_interval: float = 5.0,
) -> Starlette:
    """The readers' app over one store and mailer; ``now`` is the clock. Transactional mail
    goes through the ``outgoing`` queue, drained by a worker thread that runs while the app
    does (every ``worker_interval`` seconds, and at once after a sign-up)."""
    env = make_environment(config.templates_dir)
    worker = Worker(config, store, mailer, now=now, interval=worker_interval)
    trusted = frozenset(config.file.signup.trusted_proxies)
    per_ip = RateLimit(SIGNUPS_PER_IP, SIGNUP_WINDOW)
    wording = subscriptions.consent_wording(config.publication.name)
    secure = config.publication.base_url.startswith("https://")  # the cookie only over HTTPS

    def page(
        template: str, title: str, status: int = 200, csrf: str | None = None, **values: object
    ) -> HTMLResponse:
        context = {
            "publication": config.publication.name,
            "postal_address": config.publication.postal_address,
            "lang": config.publication.language,
            "title": title,
            "error": values.pop("error", ""),
            "csrf": csrf or "",
            **values,
        }
        try:
            html = render_page(env, f"web/{template}", context)
        except TemplateError:
            logger.exception("web page %s could not be rendered", template)
            return HTMLResponse("Something went wrong.", status_code=500)
        response = HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
        if csrf:
            response.set_cookie(
                CSRF_COOKIE, csrf, httponly=True, samesite="strict", path="/", secure=secure
            )
        return response

    def message(
        title: str,
        *paragraphs: str,
        status: int = 200,
        action: str = "",
        button: str = "",
        quiet: bool = False,
        csrf: str | None = None,
    ) -> HTMLResponse:
        return page(
            "message.html.j2",
            title,
            status,
            csrf=csrf,
            paragraphs=paragraphs,
            action=action,
            button=button,
            quiet=quiet,
        )

    def not_found() -> Response:
        return PlainTextResponse("Not found", status_code=404, headers=SECURITY_HEADERS)

    def client_ip(request: Request) -> str:
        """The peer's address; behind a trusted proxy, the last hop it names that is not one."""
        peer = request.client.host if request.client else "unknown"
        if peer not in trusted:
            return peer
        hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",")]
        for hop in reversed([h for h in hops if h]):
            if hop not in trusted:
                return hop
        return peer

    def source(request: Request) -> str:
        return f"web {client_ip(request)}"

    async def body_of(request: Request) -> bytes:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY:
            raise BadRequest(413, "That form was too large.")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                raise BadRequest(413, "That form was too large.")
        return bytes(body)

    async def form_of(request: Request, *, csrf: bool = True) -> dict[str, list[str]]:
        body = await body_of(request)
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if body and kind != "application/x-www-form-urlencoded":
            raise BadRequest(415, "Send the form as application/x-www-form-urlencoded.")
        try:
            fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
        except (UnicodeDecodeError, ValueError):
            raise BadRequest(400, "That form could not be read.") from None
        if csrf:
            sent = (fields.get("csrf") or [""])[0]
            cookie = request.cookies.get(CSRF_COOKIE, "")
            if not sent or not cookie or not hmac.compare_digest(sent, cookie):
                raise BadRequest(403, "This form has expired. Open the page again and resend it.")
        return fields

    def one(fields: Mapping[str, list[str]], key: str, limit: int) -> str:
        values = fields.get(key) or [""]
        if len(values) > 1:
            raise BadRequest(400, f"The field {key} was sent twice.")
        if len(values[0]) > limit:
            raise BadRequest(400, f"The field {key} is longer than {limit} characters.")
        return values[0]

    def chosen(fields: Mapping[str, list[str]]) -> list[str]:
        values = fields.get("sectors") or []
        if len(values) > MAX_SECTORS or any(len(v) > 64 for v in values):
            raise BadRequest(400, "Too many sectors.")
        return values

    def refused(exc: BadRequest) -> HTMLResponse:
        return message("That did not work", exc.message, status=exc.status)

    async def subscribe(request: Request) -> Response:
        token = secrets.token_urlsafe(16)
        return page(
            "subscribe.html.j2",
            "Subscribe",
            csrf=token,
            sectors=config.sectors,
            chosen=[],
            email="",
            name="",
            consent=wording,
        )

    async def subscribe_post(request: Request) -> Response:
        try:
            fields = await form_of(request)
            email = one(fields, "email", subscriptions.MAX_EMAIL)
            name = one(fields, "name", subscriptions.MAX_NAME)
            sectors = chosen(fields)
            trap = one(fields, "website", 200)
        except BadRequest as exc:
            return refused(exc)
        done = message(
            "Check your inbox",
            "If this address can subscribe, a message with a confirmation link is on its way.",
            "Open it and press the button to confirm. Nothing is sent until you do.",
        )
        if trap:  # a bot filled the hidden field: look the same, do nothing
            return done
        if per_ip.blocked(source(request)):  # only accepted sign-ups are counted
            return message(
                "Too many sign-ups",
                "Too many sign-ups from your network. Try again later.",
                status=429,
            )
        try:
            outcome = subscriptions.sign_up(
                config,
                store,
                address=email,
                name=name,
                sectors=sectors,
                source=source(request),
                now=now(),
            )
        except SubscriberError as exc:
            csrf = secrets.token_urlsafe(16)
            return page(
                "subscribe.html.j2",
                "Subscribe",
                400,
                csrf=csrf,
                sectors=config.sectors,
                chosen=sectors,
                email=email,
                name=name,
                consent=wording,
                error=exc.message,
            )
        per_ip.record(source(request))
        logger.info("sign-up from %s: %s", source(request), outcome)
        worker.wake()
        return done

    async def confirm_page(request: Request) -> Response:
        token = request.path_params["token"]
        reader = store.subscriber_by_token(token)
        if reader is None:
            return not_found()
        if reader.status == SubscriberStatus.CONFIRMED:
            return message("You are subscribed", f"{reader.email} gets {config.publication.name}.")
        if subscriptions.confirmation_expired(config, store, reader, now()):
            return expired(token)
        return message(
            "Confirm your subscription",
            f"Press the button to start getting {config.publication.name} at {reader.email}.",
            action=f"/confirm/{token}",
            button="Confirm my subscription",
            csrf=secrets.token_urlsafe(16),
        )

    def expired(token: str, *, status: int = 410) -> HTMLResponse:
        days = config.file.signup.confirm_link_days
        return message(
            "This link has expired",
            f"Confirmation links work for {days:g} days. Press the button for a new one.",
            status=status,
            action=f"/confirm/{token}/renew",
            button="Send me a new link",
            csrf=secrets.token_urlsafe(16),
        )

    async def renew_post(request: Request) -> Response:
        token = request.path_params["token"]
        reader = store.subscriber_by_token(token)
        if reader is None:
            return not_found()
        try:
            await form_of(request)
        except BadRequest as exc:
            return refused(exc)
        if reader.status == SubscriberStatus.PENDING:
            subscriptions.renew_confirmation(store, reader, now=now())
            worker.wake()
        return message("Check your inbox", "A new confirmation link is on its way.")

    async def confirm_post(request: Request) -> Response:
        token = request.path_params["token"]
        current = store.subscriber_by_token(token)
        if current is None:
            return not_found()
        try:
            await form_of(request)
        except BadRequest as exc:
            return refused(exc)
        if subscriptions.confirmation_expired(config, store, current, now()):
            return expired(token)
        reader = subscriptions.confirm(store, token, source=source(request), now=now())
        return message(
            "You are subscribed",
            f"{reader.email} will get {config.publication.name} from the next edition.",
            "Every email has a link to change your sectors or unsubscribe.",
        )

    def unsubscribed(token: str, email: str, *, status: int = 200) -> HTMLResponse:
        return message(
            "You are unsubscribed",
            f"{email} gets no emails from {config.publication.name}, so there are no "
            "preferences to change.",
            wording,
            status=status,
            action=f"/resubscribe/{token}",
            button="Subscribe again",
            csrf=secrets.token_urlsafe(16),
        )

    async def preferences_page(request: Request) -> Response:
        token = request.path_params["token"]
        reader = store.subscriber_by_token(token)
        if reader is None:
            return not_found()
        if reader.status == SubscriberStatus.UNSUBSCRIBED:
            return unsubscribed(token, reader.email)
        return page(
            "preferences.html.j2",
            "Your preferences",
            csrf=secrets.token_urlsafe(16),
            token=token,
            name=reader.name,
            sectors=config.sectors,
            chosen=reader.sectors,
        )

    async def preferences_post(request: Request) -> Response:
        token = request.path_params["token"]
        current = store.subscriber_by_token(token)
        if current is None:
            return not_found()
        if (
            current.status == SubscriberStatus.UNSUBSCRIBED
        ):  # saving would change nothing they would get
            return unsubscribed(token, current.email, status=409)
        try:
            fields = await form_of(request)
            name = one(fields, "name", subscriptions.MAX_NAME)
            sectors = chosen(fields)
            reader = subscriptions.change_preferences(
                store,
                token,
                name=name,
                sectors=sectors,
                known_sectors=config.sector_slugs,
                source=source(request),
                now=now(),
            )
        except BadRequest as exc:
            return refused(exc)
        except SubscriberError as exc:
            return message("That did not work", exc.message, status=400)
        names = [s.name for s in config.sectors if s.slug in reader.sectors]
        return message(
            "Preferences saved",
            f"You will get: {', '.join(names) if names else 'every sector'}.",
        )

    async def resubscribe_post(request: Request) -> Response:
        token = request.path_params["token"]
        if store.subscriber_by_token(token) is None:
            return not_found()
        try:
            await form_of(request)
            reader = subscriptions.resubscribe(
                store,
                token,
                publication=config.publication.name,
                source=source(request),
                now=now(),
            )
        except BadRequest as exc:
            return refused(exc)
        except SubscriberError as exc:
            return message("That did not work", exc.message, exc.hint or "", status=400)
        return message(
            "You are subscribed again",
            f"{reader.email} will get {config.publication.name} from the next edition.",
            "The link in every email lets you change your sectors.",
        )

    async def unsubscribe_page(request: Request) -> Response:
        token = request.path_params["token"]
        reader = store.subscriber_by_token(token)
        if reader is None:
            return not_found()
        if reader.status == SubscriberStatus.UNSUBSCRIBED:
            return message("You are unsubscribed", f"{reader.email} gets no more emails.")
        return message(
            "Unsubscribe",
            f"Press the button to stop {config.publication.name} at {reader.email}.",
            action=f"/unsubscribe/{token}",
            button="Unsubscribe",
            quiet=True,
        )

    async def unsubscribe_post(request: Request) -> Response:
        # RFC 8058: the provider posts List-Unsubscribe=One-Click with no cookie; answer 200.
        token = request.path_params["token"]
        if store.subscriber_by_token(token) is None:
            return not_found()
        try:
            await body_of(request)  # any encoding: RFC 8058 asks for multipart/form-data
        except BadRequest as exc:
            return refused(exc)
        reader = subscriptions.unsubscribe(store, token, source=source(request), now=now())
        return message(
            "You are unsubscribed",
            f"{reader.email} gets no more emails from {config.publication.name}.",
        )

    async def health(request: Request) -> Response:
        return PlainTextResponse("healthy\n")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        worker.start()
        try:
            yield
        finally:
            worker.stop()

    return Starlette(
        lifespan=lifespan,
        routes=[
            Route("/", subscribe, methods=["GET"]),
            Route("/subscribe", subscribe, methods=["GET"]),
            Route("/subscribe", subscribe_post, methods=["POST"]),
            Route("/confirm/{token}", confirm_page, methods=["GET"]),
            Route("/confirm/{token}", confirm_post, methods=["POST"]),
            Route("/preferences/{token}", preferences_page, methods=["GET"]),
            Route("/preferences/{token}", preferences_post, methods=["POST"]),
            Route("/resubscribe/{token}", resubscribe_post, methods=["POST"]),
            Route("/confirm/{token}/renew", renew_post, methods=["POST"]),
            Route("/unsubscribe/{token}", unsubscribe_page, methods=["GET"]),
            Route("/unsubscribe/{token}", unsubscribe_post, methods=["POST"]),
            Route("/healthz", health, methods=["GET"]),
        ],
    )
