"""The editor's live preview: ``newsletter preview --serve``.

``/`` shows the digest at desktop and phone widths and in dark mode, beside a panel of its
stories, and reloads itself when a template or the config changes; ``/digest.html`` and
``/digest.txt`` are rendered afresh on every request from the stored stories, so an edit shows
at once. A template or config error is shown on the page (file, line, message) instead of
stopping the server. Each story has a form that moves it to another sector: the move is
written to the day's overrides file (and so kept as a labelled example when the edition is
built), and the page says which story went where. Once the day's edition is frozen or sent,
the page shows that edition as stored (what readers got, what the archive shows) and says so;
it can no longer change, so the move forms are gone. ``/stats`` shows what readers did with
the last editions (``web.stats_page``).

The page (``templates/web/preview.html.j2``) fits from 1024 px up: the panel keeps its width
and the frames wrap below each other instead of being cut off.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import secrets
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlencode

import watchfiles
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route

from newsletter import flows
from newsletter.config import Config, load_config, save_move
from newsletter.edition import digest, personalize, render
from newsletter.edition.filters import longdate
from newsletter.errors import EditionError, NewsletterError
from newsletter.flows.build import build
from newsletter.models import Edition, EditionStatus, RenderedEmail, Section
from newsletter.readers.links import preview_values
from newsletter.store import Store
from newsletter.web.stats_page import StatsPage

logger = logging.getLogger(__name__)

WATCHED_SUFFIXES = (".yaml", ".yml", ".j2", ".mjml", ".html", ".txt", ".css")

ERROR_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Preview error</title></head>
<body style="font: 15px/1.5 system-ui, sans-serif; padding: 24px; color: #1f2933;">
<h1 style="color: #b42318; font-size: 20px;">The digest could not be rendered</h1>
<pre style="white-space: pre-wrap; background: #fef3f2; padding: 12px;">{message}</pre>
<p>{hint}</p><p>Fix it and save: this page reloads by itself.</p></body></html>
"""

NO_EDITION_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>No edition today</title></head>
<body style="font: 15px/1.5 system-ui, sans-serif; padding: 24px; color: #1f2933;">
<h1 style="font-size: 20px;">No edition for {day}</h1><p>{reason}</p>
<p>This page reloads by itself when the config or the day's overrides change.</p></body></html>
"""

# what the page says about a day's edition once it is stored: it can no longer change
FIXED_NOTES = {
    EditionStatus.FROZEN: "Frozen for sending: this is the edition of {day} as readers will "
    "get it. It can no longer change, so moves are closed until the next edition.",
    EditionStatus.SENDING: "Being sent: this is the edition of {day} as readers are getting "
    "it. It can no longer change, so moves are closed until the next edition.",
    EditionStatus.SENT: "Sent: this is the edition of {day} as readers got it, and as the "
    "archive shows it. It can no longer change, so moves are closed until the next edition.",
}


@dataclass(frozen=True, slots=True)
class Shown:
    """What the preview shows for the day: the edition built now, or the one stored once it
    is frozen or sent (``status``), or none and why."""

    config: Config
    day: date
    edition: Edition | None
    status: EditionStatus | None = None
    reason: str = ""


class Preview:
    """The preview's pages for one config file, built afresh on every request."""

    def __init__(
        self, config_path: Path, *, sectors: Sequence[str], now: Callable[[], datetime]
    ) -> None:
        self.config_path, self.sectors, self.now = config_path, sectors, now
        self.token = secrets.token_urlsafe(24)  # the move form's, so no other page can post it
        self._generation = 0  # how many times a watched file changed
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self.env = render.make_environment()  # the built-in page, whatever the config says

    def watched(self) -> list[Path]:
        """The folders whose edits reload the page: the config's (with its overrides), the
        publisher's templates, and the built-in ones."""
        folders = [self.config_path.resolve().parent, render.BUILTIN_TEMPLATES]
        try:
            templates = load_config(self.config_path).templates_dir
        except NewsletterError:
            templates = None
        if templates is not None:
            folders.append(templates.resolve())
        return [f for f in dict.fromkeys(folders) if f.is_dir()]

    def watch(self) -> None:
        """Count the changes to watched files (watchfiles) until ``stop``; each wakes the pages
        waiting in ``version``."""
        for _ in watchfiles.watch(
            *self.watched(),
            watch_filter=lambda change, path: path.endswith(WATCHED_SUFFIXES),
            debounce=50,
            stop_event=self._stop,
        ):
            with self._changed:
                self._generation += 1
                self._changed.notify_all()

    def stop(self) -> None:
        self._stop.set()

    def routes(self) -> list[Route]:
        return [
            Route("/", self.index),
            Route("/digest.html", self.digest_html),
            Route("/digest.txt", self.digest_text),
            Route("/version", self.version),
            Route("/move", self.move, methods=["POST"]),
        ]

    def current(self) -> Shown:
        """The day's edition: the stored one once it is frozen or sent, else built now."""
        config = load_config(self.config_path)
        store = Store.open(config.database_url, privacy_key=config.privacy_key())
        try:
            now = self.now()
            day = flows.edition_date_for(config, now)
            stored = store.editions.edition(day)
            if stored is not None and stored.status in EditionStatus.fixed():
                return Shown(config, day, stored.edition, stored.status)
            built = build(config, store, now=now)
            return Shown(config, day, built.edition, reason=built.reason)
        finally:
            store.close()

    def render(self, shown: Shown) -> RenderedEmail:
        """The email of what is shown, for the preview's sectors, with stand-in reader values."""
        if shown.edition is None:
            raise EditionError(f"No edition today: {shown.reason}", day=shown.day)
        config = shown.config
        env = render.make_environment(config.templates_dir)
        sections = digest.layout(shown.edition, self.sectors)
        settings = render.settings_for(config)
        variant = render.render_email(
            env, shown.edition, sections, settings=settings, chosen=self.sectors
        )
        return personalize.Personalizer(variant).fill(preview_values(config.publication.base_url))

    def index(self, request: Request) -> Response:
        context: dict[str, object] = {"notes": [], "sections": [], "editable": False}
        notes: list[tuple[str, str]] = []
        try:
            shown = self.current()
            if shown.edition is None:
                context["title"] = f"No edition for {longdate(shown.day)}"
                context["details"] = "Nothing to preview yet"
                notes.append(("info", f"No edition today: {shown.reason}."))
            else:
                email = self.render(shown)
                size = len(email.html.encode()) / 1024
                context["title"] = email.subject
                context["details"] = f"{size:.1f} KB of HTML · {email.preheader}"
                notes += self.notes(shown, request.query_params)
                context.update(self.panel(shown))
        except NewsletterError as exc:
            context["title"], context["details"] = "Preview", "The digest could not be rendered"
            notes.append(("error", f"Error: {exc.message} {exc.hint or ''}".strip()))
        context.update(notes=notes, version=self._generation)
        return HTMLResponse(render.render_page(self.env, "web/preview.html.j2", context))

    def notes(self, shown: Shown, asked: Mapping[str, str]) -> list[tuple[str, str]]:
        """What the page says above the frames: a stored edition's status, the move just made."""
        notes = []
        if shown.status is not None:
            notes.append(("fixed", FIXED_NOTES[shown.status].format(day=longdate(shown.day))))
        moved, slug = asked.get("moved", ""), asked.get("to", "")
        names = {s.slug: s.name for s in shown.config.sectors}
        if moved and slug in names and shown.edition is not None:
            said = _moved(digest.layout(shown.edition), moved, slug, names[slug])
            saved = shown.config.overrides_dir / f"{shown.day.isoformat()}.yaml"
            notes.append(("done", f"{said} The move is saved in {saved}."))
        return notes

    def panel(self, shown: Shown) -> dict[str, object]:
        """The stories by section, each with the sector it is in; movable unless the edition
        is stored (frozen or sent)."""
        assert shown.edition is not None
        sections = [
            (section.sector.name, section.sector.slug, [*section.stories, *section.more])
            for section in digest.layout(shown.edition, self.sectors)
        ]
        return {
            "sections": sections,
            "sectors": shown.config.sectors,
            "editable": shown.status is None,
            "token": self.token,
        }

    async def move(self, request: Request) -> Response:
        body = (await request.body())[:10_000]
        fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
        form = {key: values[0] for key, values in fields.items()}
        if not secrets.compare_digest(form.get("token", ""), self.token):
            return PlainTextResponse("This form is stale: reload the preview page.", 403)
        story, slug = form.get("story", ""), form.get("sector", "")
        before = self._generation
        try:
            path = await asyncio.to_thread(self._save_move, story, slug)
        except NewsletterError as exc:
            return PlainTextResponse(f"{exc.message}\n{exc.hint or ''}\n", status_code=400)
        logger.info("preview: story %s moved to %s in %s", story, slug, path)
        # the page it leads back to waits until the watcher has seen this very edit, so that
        # page is not reloaded again for it; it says which story went where
        await asyncio.to_thread(self._wait_past, before, 2.0)
        return RedirectResponse("/?" + urlencode({"moved": story, "to": slug}), status_code=303)

    def _save_move(self, story: str, slug: str) -> Path:
        """The editor's move, into the day's overrides file (read and written in a thread);
        refused once the day's edition is stored, which no move can change any more."""
        config = load_config(self.config_path)
        day = flows.edition_date_for(config, self.now())
        store = Store.open(config.database_url, privacy_key=config.privacy_key())
        try:
            stored = store.editions.edition_ref(day)
        finally:
            store.close()
        if stored is not None and stored.status in EditionStatus.fixed():
            raise EditionError(
                f"the edition of {day} is {stored.status}: it can no longer change",
                day=day,
                hint="Moves apply to an edition not yet frozen; reload the preview page.",
            )
        return save_move(config, day, story, slug)

    def _wait_past(self, generation: int, seconds: float) -> None:
        with self._changed:
            self._changed.wait_for(
                lambda: self._generation != generation or self._stop.is_set(), timeout=seconds
            )

    def digest_html(self, request: Request) -> Response:
        """The email's HTML; ``?scheme=dark`` shows its dark variant whatever the browser's
        setting (the dark styles applied unconditionally). No edition today is said plainly,
        not as an error."""
        try:
            shown = self.current()
            if shown.edition is None:
                page = NO_EDITION_PAGE.format(
                    day=longdate(shown.day), reason=html.escape(shown.reason)
                )
                return HTMLResponse(page)
            body = self.render(shown).html
            if request.query_params.get("scheme") == "dark":
                body = body.replace("@media (prefers-color-scheme: dark)", "@media all")
            return HTMLResponse(body)
        except NewsletterError as exc:
            logger.warning("preview: %s", exc.message)
            page = ERROR_PAGE.format(
                message=html.escape(exc.message), hint=html.escape(exc.hint or "")
            )
            return HTMLResponse(page, status_code=500)

    def digest_text(self, request: Request) -> Response:
        try:
            shown = self.current()
            if shown.edition is None:
                return PlainTextResponse(f"No edition for {longdate(shown.day)}: {shown.reason}\n")
            return PlainTextResponse(self.render(shown).text)
        except NewsletterError as exc:
            return PlainTextResponse(f"{exc.message}\n{exc.hint or ''}\n", status_code=500)

    async def version(self, request: Request) -> Response:
        """The count of changes; with ``after``, answered when it differs (or after 25 s, or
        when the page has gone, checked every half second)."""
        after = request.query_params.get("after")

        def changed() -> bool:
            return after is None or str(self._generation) != after or self._stop.is_set()

        def wait(seconds: float) -> None:
            with self._changed:
                self._changed.wait_for(changed, timeout=seconds)

        for _ in range(50):
            if changed() or await request.is_disconnected():
                break
            await asyncio.to_thread(wait, 0.5)
        return JSONResponse({"version": str(self._generation)})


def _moved(sections: Sequence[Section], story_id: str, slug: str, name: str) -> str:
    """The confirmation of a move: which story went to which sector, and whether it shows."""
    placed = {
        s.id: (s.title, section.sector.slug)
        for section in sections
        for s in (*section.stories, *section.more)
    }
    title, where = placed.get(story_id, ("", ""))
    if not title:
        return f"Moved a story to {name}; it is not in this preview's sections."
    if where != slug:
        return f"Moved “{title}” to {name}, but it still shows under another sector."
    return f"Moved “{title}” to {name}."


def create_app(
    config_path: Path,
    *,
    sectors: Sequence[str] = (),
    now: Callable[[], datetime],
) -> Starlette:
    """The preview app for one config file; ``now`` is the clock (the CLI passes the real one).
    While it runs, a thread watches the files the page depends on."""
    preview = Preview(config_path, sectors=sectors, now=now)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        watcher = threading.Thread(target=preview.watch, name="preview-watch", daemon=True)
        watcher.start()
        try:
            yield
        finally:
            preview.stop()
            watcher.join(timeout=10)

    return Starlette(
        routes=[*preview.routes(), *StatsPage(config_path).routes()], lifespan=lifespan
    )
