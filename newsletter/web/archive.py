"""The publication's public pages on ``newsletter serve``: the archive of sent editions, one
page per edition (the emails' "view in browser" link), a page per sector, the Atom feeds and
robots.txt. Every page carries the sign-up box.

The pages are the same for every visitor and hold nothing of any reader (they are rendered
from the frozen edition snapshots, with no token, address or name), so each is rendered once
and kept until another edition is published (``Store.published_count`` changes).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import date, datetime

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

from newsletter.config import Config
from newsletter.config.logo import LOGO_TYPES
from newsletter.edition import brief, digest, render, syndication
from newsletter.models import Edition, EditionStatus, Section, Story
from newsletter.readers.subscriptions import consent_wording
from newsletter.store import Store
from newsletter.web.pages import SECURITY_HEADERS

ATOM = "application/atom+xml; charset=utf-8"
PUBLISHED = (EditionStatus.SENDING, EditionStatus.SENT)  # readers have it: the archive shows it


class Archive:
    def __init__(self, config: Config, store: Store, *, now: Callable[[], datetime]) -> None:
        self.config, self.store, self.now = config, store, now
        self.env = render.make_environment(config.templates_dir)
        self.base = config.publication.base_url.rstrip("/")
        self.slugs = {s.slug: s for s in config.sectors}
        publication = config.publication
        self.site = syndication.Site(
            publication.name,
            self.base,
            publication.language,
            (publication.logo.url or "") if publication.logo else "",
        )
        self._cache: dict[str, tuple[tuple[int, int], bytes, str, int]] = {}
        self._lock = threading.Lock()

    def routes(self) -> list[Route]:
        return [
            Route("/archive", self.archive),
            Route("/archive/{day}", self.edition_page),
            Route("/sectors/{slug}", self.sector_page),
            Route("/feed.xml", self.feed),
            Route("/sectors/{slug}/feed.xml", self.sector_feed),
            Route("/robots.txt", self.robots),
            *self._logo_routes(),
        ]

    def _logo_routes(self) -> list[Route]:
        """The logo kept as a file (``publication.logo.file``), where the email links to it."""
        logo = self.config.publication.logo
        if logo is None or logo.file is None:
            return []
        path, kind = logo.file, LOGO_TYPES[logo.file.suffix.lower()]

        async def image(request: Request) -> Response:
            headers = {**SECURITY_HEADERS, "Cache-Control": "public, max-age=86400"}
            return FileResponse(path, media_type=kind, headers=headers)

        return [Route(f"/logo{path.suffix.lower()}", image, methods=["GET"])]

    # --- caching -------------------------------------------------------------------------------

    def _cached(self, key: str, make: Callable[[], tuple[bytes, str, int]]) -> Response:
        """The page under ``key``, rendered again only after another edition is published."""
        version = self.store.editions.published_count()
        with self._lock:
            hit = self._cache.get(key)
        if hit is None or hit[0] != version:
            body, media, status = make()
            with self._lock:
                if len(self._cache) > 2000:  # one entry per page: bounded however many are asked
                    self._cache.clear()
                self._cache[key] = hit = (version, body, media, status)
        _, body, media, status = hit
        headers = {**SECURITY_HEADERS, "Cache-Control": "public, max-age=300"}
        return Response(body, status_code=status, media_type=media, headers=headers)

    def _page(self, template: str, status: int = 200, **values: object) -> tuple[bytes, str, int]:
        publication = self.config.publication
        context = {
            "publication": publication.name,
            "site_url": publication.url,
            "base_url": self.base,
            "postal_address": publication.postal_address,
            "privacy_url": publication.privacy_url,
            "terms_url": publication.terms_url,
            "lang": publication.language,
            "logo": publication.logo,
            "robots": self.config.file.web.robots,
            "sectors": self.config.sectors,
            "consent": consent_wording(publication.name),
            "zone": self.config.file.schedule.timezone,
            "description": "",
            "feed_url": f"{self.base}/feed.xml",
            "feed_title": publication.name,
            **values,
        }
        html = render.render_page(self.env, f"web/{template}", context)
        return html.encode("utf-8"), "text/html; charset=utf-8", status

    def _missing(self, what: str) -> tuple[bytes, str, int]:
        # no canonical address, and no index of it: it is no page of the site
        return self._page(
            "missing.html.j2", 404, title="Not found", what=what, path="", robots="noindex"
        )

    async def unknown(self, request: Request, exc: Exception) -> Response:
        """No route answers this address: a trailing slash is dropped (a relative redirect,
        which behind an HTTPS proxy keeps the reader's scheme and host), else the site's own
        "Not found" page."""
        path = request.url.path
        if path.endswith("/") and path.strip("/"):
            query = f"?{request.url.query}" if request.url.query else ""
            # one leading slash: "//host/" would send the reader to another site
            return Response(status_code=307, headers={"Location": "/" + path.strip("/") + query})
        body, media, status = self._missing("this page")
        return Response(body, status_code=status, media_type=media, headers=SECURITY_HEADERS)

    # --- pages ---------------------------------------------------------------------------------

    def archive(self, request: Request) -> Response:
        raw = request.query_params.get("page", "1")
        page = int(raw) if raw.isdigit() and 0 < int(raw) < 100_000 else 1
        return self._cached(f"archive:{page}", lambda: self._archive(page))

    def _archive(self, page: int) -> tuple[bytes, str, int]:
        size = self.config.file.web.archive_page_size
        total, _ = self.store.editions.published_count()
        stored = self.store.editions.published_editions(limit=size, offset=(page - 1) * size)
        if page > 1 and not stored:
            return self._missing(f"page {page} of the archive")
        items = [_summary(s.edition, self.config.file.email.more_headlines) for s in stored]
        pages = max(1, -(-total // size))
        return self._page(
            "archive.html.j2",
            title="Archive" + (f", page {page} of {pages}" if page > 1 else ""),
            path="/archive" + (f"?page={page}" if page > 1 else ""),
            description=f"Every edition of {self.config.publication.name}, newest first.",
            items=items,
            page=page,
            pages=pages,
        )

    def edition_page(self, request: Request) -> Response:
        day = _date(request.path_params["day"])
        key = f"edition:{day}"
        return self._cached(key, lambda: self._edition(day))

    def _edition(self, day: date | None) -> tuple[bytes, str, int]:
        stored = self.store.editions.edition(day) if day else None
        if day is None or stored is None or stored.status not in PUBLISHED:
            return self._missing("that edition")
        edition = stored.edition
        # as the email with every sector: the brief, then the "more" headlines capped the same way
        items, rest = brief.pick(edition, digest.layout(edition))
        rest = brief.capped_more(rest, self.config.file.email.more_headlines)
        shown = _shown(items, rest)
        headline = shown[0].title if shown else ""
        return self._page(
            "edition.html.j2",
            title=f"{edition.edition_date:%d %b %Y}",  # the frame adds the publication's name
            path=f"/archive/{edition.edition_date.isoformat()}",
            description=headline,
            edition=edition,
            brief=items,
            contents=[s for s in rest if s.stories],
            sections=rest,
            sponsor=edition.sponsor,
            sponsor_after=digest.sponsor_place(edition, rest),
            og_type="article",
        )

    def sector_page(self, request: Request) -> Response:
        slug = request.path_params["slug"]
        return self._cached(f"sector:{slug}", lambda: self._sector(slug))

    def _sector(self, slug: str) -> tuple[bytes, str, int]:
        sector = self.slugs.get(slug)
        if sector is None:
            return self._missing("that sector")
        stories = self.sector_stories(slug)
        return self._page(
            "sector.html.j2",
            title=sector.name,
            path=f"/sectors/{slug}",
            description=sector.description or f"The latest {sector.name} stories.",
            sector=sector,
            stories=stories,
            feed_url=f"{self.base}/sectors/{slug}/feed.xml",
            feed_title=f"{self.config.publication.name}: {sector.name}",
        )

    def sector_stories(self, slug: str) -> list[Story]:
        """The sector's stories in the recent published editions, newest first, each once."""
        web = self.config.file.web
        seen: set[str] = set()
        found: list[Story] = []
        for stored in self.store.editions.published_editions(limit=web.sector_days):
            for section in digest.layout(stored.edition, (slug,)):
                for story in (*section.stories, *section.more):
                    if story.url not in seen:
                        seen.add(story.url)
                        found.append(story)
        found.sort(key=lambda s: s.published, reverse=True)
        return found[: web.sector_stories]

    def feed(self, request: Request) -> Response:
        return self._cached("feed", self._editions_feed)

    def _editions_feed(self) -> tuple[bytes, str, int]:
        stored = self.store.editions.published_editions(limit=30)
        items = [_summary(s.edition, self.config.file.email.more_headlines) for s in stored]
        return syndication.editions_feed(self.site, items), ATOM, 200

    def sector_feed(self, request: Request) -> Response:
        slug = request.path_params["slug"]
        sector = self.slugs.get(slug)
        if sector is None:
            return PlainTextResponse("Not found\n", status_code=404, headers=SECURITY_HEADERS)
        return self._cached(
            f"sector-feed:{slug}",
            lambda: (
                syndication.sector_feed(self.site, sector, self.sector_stories(slug)),
                ATOM,
                200,
            ),
        )

    async def robots(self, request: Request) -> Response:
        robots = self.config.file.web.robots.lower()
        rules = (
            "Disallow: /"
            if "noindex" in robots
            else "Disallow: /confirm/\nDisallow: /preferences/\nDisallow: /unsubscribe/"
        )
        return PlainTextResponse(f"User-agent: *\n{rules}\n")


def _summary(edition: Edition, more_headlines: int) -> tuple[Edition, str, int, list[str]]:
    """An edition as the archive lists it, as its page shows it: (edition, top headline,
    stories shown, the sectors showing them). A day whose stories only fill "more" headlines
    is named by its first one."""
    sections: tuple[Section, ...] = digest.layout(edition)
    items, rest = brief.pick(edition, sections)
    shown = _shown(items, brief.capped_more(rest, more_headlines))
    names = [s.sector.name for s in sections if s.stories or s.more]
    return edition, shown[0].title if shown else "", len(shown), names


def _shown(items: Sequence[brief.BriefItem], rest: Sequence[Section]) -> list[Story]:
    """The stories an edition's page shows, in its order: the brief's, then each section's."""
    return [i.story for i in items] + [t for s in rest for t in (*s.stories, *s.more)]


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None
