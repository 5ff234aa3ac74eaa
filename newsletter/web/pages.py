"""The readers' pages: one template per kind of page, security headers on every answer, the
CSRF cookie set with the form that carries its token, and the next steps each page offers (no
page is a dead end)."""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Mapping, Sequence
from datetime import date, timedelta

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from newsletter.config import Config
from newsletter.config.values import time_zones
from newsletter.edition.filters import longdate
from newsletter.edition.render import make_environment, render_page
from newsletter.errors import NewsletterError, TemplateError
from newsletter.models import Subscriber, SubscriberStatus
from newsletter.readers.links import preferences_path, renew_path
from newsletter.readers.subscriptions import suppressed_because
from newsletter.readers.timing import WEEKDAY_NAMES
from newsletter.web.forms import CSRF_COOKIE, BadRequest

logger = logging.getLogger(__name__)

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",  # tokens live in URLs
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; script-src 'self'; "
    "img-src 'self' https: data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
}


Link = tuple[str, str]  # (label, address): a next step offered under a page's message
ARCHIVE: Link = ("Browse every edition in the archive", "/archive")
SIGN_UP: Link = ("Sign up with another address", "/subscribe")
# a reader in one of these gets nothing: their pages say so, with the way back in
STOPPED = (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED)


def new_csrf() -> str:
    return secrets.token_urlsafe(16)


def onward(latest: date | None, *, token: str = "") -> list[Link]:
    """The next steps after a reader's page: the latest edition (when one was sent), the
    archive and, for a reader's own page, their preferences."""
    links = (
        [(f"Read the latest edition, {longdate(latest)}", f"/archive/{latest}")] if latest else []
    )
    links.append(ARCHIVE)
    if token:
        links.append(("Change your sectors or your name", preferences_path(token)))
    return links


class Pages:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.env = make_environment(config.templates_dir)
        self.secure = config.publication.base_url.startswith("https://")  # cookie over HTTPS

    def page(
        self,
        template: str,
        title: str,
        status: int = 200,
        csrf: str | None = None,
        **values: object,
    ) -> HTMLResponse:
        publication = self.config.publication
        context = {
            "publication": publication.name,
            "postal_address": publication.postal_address,
            "lang": publication.language,
            "logo": publication.logo,
            "sectors": self.config.sectors,
            "privacy_url": publication.privacy_url,
            "terms_url": publication.terms_url,
            "site_url": publication.url,
            "feed_url": publication.base_url.rstrip("/") + "/feed.xml",
            "title": title,
            "error": values.pop("error", ""),
            "schedule": self.config.file.schedule,  # the delivery hours readers may choose
            "zones": sorted(time_zones()),
            "weekday_names": WEEKDAY_NAMES,
            "csrf": csrf or "",
            **values,
        }
        try:
            html = render_page(self.env, f"web/{template}", context)
        except TemplateError:
            logger.exception("web page %s could not be rendered", template)
            return HTMLResponse("Something went wrong.", status_code=500)
        response = HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
        if csrf:
            # lax: a link from another site sends it, so the page that link opens carries the
            # same token as the forms of tabs already open (strict gave it a new one, refusing
            # theirs); a form posted from another site still goes without it, and is refused
            response.set_cookie(
                CSRF_COOKIE, csrf, httponly=True, samesite="lax", path="/", secure=self.secure
            )
        return response

    def too_many_sign_ups(self, wait: timedelta, links: Sequence[Link]) -> HTMLResponse:
        """The sign-up limit's answer: when to try again, in words and in ``Retry-After``."""
        seconds = max(1, math.ceil(wait.total_seconds()))
        minutes = math.ceil(seconds / 60)
        page = self.message(
            "Too many sign-ups",
            "Too many sign-ups from your network. "
            f"Try again in {minutes} minute{'s' * (minutes != 1)}.",
            status=429,
            links=links,
        )
        page.headers["Retry-After"] = str(seconds)
        return page

    def message(
        self,
        title: str,
        *paragraphs: str,
        status: int = 200,
        action: str = "",
        button: str = "",
        quiet: bool = False,
        csrf: str | None = None,
        links: Sequence[Link] = (),
    ) -> HTMLResponse:
        """A page that says what happened; ``links`` are the next steps offered under it."""
        return self.page(
            "message.html.j2",
            title,
            status,
            csrf=csrf,
            paragraphs=paragraphs,
            action=action,
            button=button,
            quiet=quiet,
            links=list(links),
        )

    def refused(self, exc: BadRequest, *, back: str) -> HTMLResponse:
        """A form that could not be taken; ``back`` is the page that holds it."""
        again = ("Open the form again", back)
        return self.message(
            "That did not work", exc.message, status=exc.status, links=[again, ARCHIVE]
        )

    def preferences(
        self,
        token: str,
        reader: Subscriber,
        latest: date | None,
        *,
        when: Mapping[str, str] | None = None,
        refused: NewsletterError | None = None,
    ) -> HTMLResponse:
        """A reader's preferences form; after a ``refused`` change, as they filled it
        (``reader`` and ``when`` as typed), with what to correct above it."""
        said = ""
        if refused is not None:
            said = f"Not saved: {refused.message}" + (f" {refused.hint}" if refused.hint else "")
        return self.page(
            "preferences.html.j2",
            "Your preferences",
            400 if refused else 200,
            csrf=new_csrf(),
            token=token,
            reader=reader,
            when=dict(when or {}),
            error=said,
            latest=latest,
        )

    def unknown_link(self) -> HTMLResponse:
        """The page of a reader's link whose token no reader has (an erased reader's, an old
        one replaced, a mistyped one): the same for every one, and the ways on."""
        return self.message(
            "This link is not valid",
            "It may come from an older email, or the address was removed from the list. The "
            "links in your latest email work.",
            status=404,
            links=[("Sign up", "/subscribe"), ARCHIVE],
        )

    def expired(self, token: str, *, status: int = 410) -> HTMLResponse:
        days = self.config.file.signup.confirm_link_days
        return self.message(
            "This link has expired",
            f"Confirmation links work for {days:g} days. Press the button for a new one.",
            status=status,
            action=renew_path(token),
            button="Send me a new link",
            csrf=new_csrf(),
            links=[("Sign up again instead", "/subscribe"), ARCHIVE],
        )

    def no_preferences(self, reader: Subscriber) -> str:
        name, email = self.config.publication.name, reader.email
        return f"{email} gets no emails from {name}, so there are no preferences to change."

    def unsubscribed(
        self,
        token: str,
        reader: Subscriber,
        wording: str,
        *,
        said: str = "",
        suppressed: str | None = None,
        status: int = 200,
    ) -> HTMLResponse:
        """The page of a reader who gets nothing (unsubscribed, or bounced): what happened
        (``said``, else why nothing is sent), and the way back in, unless the address is
        ``suppressed`` (its ``SuppressionReason``), which no button can undo."""
        name = self.config.publication.name
        bounced = reader.status == SubscriberStatus.BOUNCED
        title = "Nothing is sent to you" if bounced else "You are unsubscribed"
        if bounced:  # why, whatever page it is
            said = f"Mail from {name} to {reader.email} bounced, so none is sent to it now."
        elif not said:
            said = f"{reader.email} gets no more emails from {name}."
        if suppressed is not None:
            never = f"{reader.email} {suppressed_because(suppressed)}, so {name} never goes to it."
            again = "To read it again, sign up with another address."
            return self.message(title, never, again, status=status, links=[SIGN_UP, ARCHIVE])
        return self.message(
            title,
            said,
            wording,
            status=status,
            action=f"/resubscribe/{token}",
            button="Subscribe again",
            csrf=new_csrf(),
            links=[ARCHIVE, SIGN_UP],
        )


def not_found() -> Response:
    """A bare 404 (the desk's, behind its sign-in)."""
    return PlainTextResponse("Not found", status_code=404, headers=SECURITY_HEADERS)


# fills an empty time-zone field with the browser's own (the pages work without it)
ZONE_SCRIPT = """for (const input of document.querySelectorAll("input[data-browser-zone]")) {
  if (!input.value) {
    try { input.value = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) {}
  }
}
"""


def zone_script(request: Request) -> Response:
    """``/zone.js``: the one script the reader's pages load."""
    headers = {**SECURITY_HEADERS, "Cache-Control": "public, max-age=86400"}
    return Response(ZONE_SCRIPT, media_type="text/javascript", headers=headers)


async def health(request: Request) -> Response:
    """``/healthz``: the app answers."""
    return PlainTextResponse("healthy\n")


def plain_routes() -> list[Route]:
    """The routes that need nothing but themselves: the health check, the zone script."""
    return [
        Route("/healthz", health, methods=["GET"]),
        Route("/zone.js", zone_script, methods=["GET"]),
    ]
