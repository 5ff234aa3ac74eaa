"""The editor's live preview: ``newsletter preview --serve``.

``/`` shows the digest at desktop and phone widths side by side and reloads itself when a
template or the config changes; ``/digest.html`` and ``/digest.txt`` are rendered afresh on every
request from the stored stories, so an edit shows at once. A template or config error is shown
on the page (file, line, message) instead of stopping the server. Beside them, each story has
a form that moves it to another sector: the move is written to the day's overrides file (and so
kept as a labelled example when the edition is built). ``/stats`` shows what readers did
with the last editions (``web.stats_page``).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import secrets
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs

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
from newsletter.errors import EditionError, NewsletterError
from newsletter.models import RenderedEmail
from newsletter.readers.links import preview_values
from newsletter.store import Store
from newsletter.web.stats_page import StatsPage

logger = logging.getLogger(__name__)

WATCHED_SUFFIXES = (".yaml", ".yml", ".j2", ".mjml", ".html", ".txt", ".css")

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Preview: {title}</title>
<style>
 body {{ margin: 0; font: 14px/1.4 system-ui, sans-serif; background: #e4e7eb; color: #1f2933; }}
 header {{ padding: 10px 16px; background: #102a43; color: #fff; }}
 header p {{ margin: 2px 0; color: #d9e2ec; }}
 main {{ display: flex; gap: 24px; padding: 16px; align-items: flex-start; overflow-x: auto; }}
 figure {{ margin: 0; }} figcaption {{ font-weight: 600; padding-bottom: 6px; }}
 iframe {{ border: 1px solid #9aa5b1; background: #fff; height: 88vh; }}
 aside {{ width: 300px; max-height: 88vh; overflow-y: auto; background: #fff; padding: 8px; }}
 aside h2 {{ font-size: 13px; margin: 10px 0 4px; }} aside p {{ margin: 4px 0; }}
 aside form {{ display: flex; gap: 4px; }} aside select {{ flex: 1; }}
</style></head>
<body><header><strong>{title}</strong> ·
 <a href="/digest.txt" style="color: #bcccdc;">plain text</a> ·
 <a href="/stats" style="color: #bcccdc;">what readers did</a><p>{details}</p></header>
<main>
 <aside>{stories}</aside>
 <figure><figcaption>Desktop, 640 px</figcaption>
  <iframe title="The digest at desktop width" src="/digest.html" width="640"></iframe></figure>
 <figure><figcaption>Phone, 375 px</figcaption>
  <iframe title="The digest at phone width" src="/digest.html" width="375"></iframe></figure>
 <figure><figcaption>Dark mode, 375 px</figcaption>
  <iframe title="The digest in dark mode" src="/digest.html?scheme=dark" width="375">
  </iframe></figure>
</main>
<script>
 let seen = "{version}";
 (async () => {{
   for (;;) {{
     try {{  // answered as soon as a watched file changes, or after 25 s with no change
       const now = (await (await fetch("/version?after=" + seen)).json()).version;
       if (now !== seen) {{ location.reload(); return; }}
     }} catch (e) {{ await new Promise((done) => setTimeout(done, 1000)); }}
   }}
 }})();
</script></body></html>
"""

ERROR_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Preview error</title></head>
<body style="font: 15px/1.5 system-ui, sans-serif; padding: 24px; color: #1f2933;">
<h1 style="color: #b42318; font-size: 20px;">The digest could not be rendered</h1>
<pre style="white-space: pre-wrap; background: #fef3f2; padding: 12px;">{message}</pre>
<p>{hint}</p><p>Fix it and save: this page reloads by itself.</p></body></html>
"""


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

    def build_current(self) -> tuple[Config, flows.Built]:
        config = load_config(self.config_path)
        store = Store.open(config.database_url, privacy_key=config.privacy_key())
        try:
            return config, flows.build(config, store, now=self.now())
        finally:
            store.close()

    def render_current(self) -> RenderedEmail:
        config, built = self.build_current()
        if built.edition is None:
            raise EditionError(f"No edition today: {built.reason}", day=built.edition_date)
        env = render.make_environment(config.templates_dir)
        sections = digest.layout(built.edition, self.sectors)
        variant = render.render_email(
            env, built.edition, sections, settings=render.settings_for(config)
        )
        values = preview_values(config.publication.base_url)
        return personalize.Personalizer(variant).fill(values)

    def index(self, request: Request) -> Response:
        stories = ""
        try:
            email = self.render_current()
            title = email.subject
            details = f"{len(email.html.encode()) / 1024:.1f} KB of HTML · {email.preheader}"
            stories = self.story_panel()
        except NewsletterError as exc:
            title, details = "Preview", f"Error: {exc.message}"
        return HTMLResponse(
            PAGE.format(
                title=html.escape(title),
                details=html.escape(details),
                version=self._generation,
                stories=stories,
            )
        )

    def story_panel(self) -> str:
        """Each shown story with a form that moves it to another sector."""
        config, built = self.build_current()
        if built.edition is None:
            return ""
        parts = ["<strong>Move a story to another sector</strong>"]
        for section in digest.layout(built.edition, self.sectors):
            parts.append(f"<h2>{html.escape(section.sector.name)}</h2>")
            for story in (*section.stories, *section.more):
                here = section.sector.slug
                options = "".join(
                    f'<option value="{s.slug}"{" selected" if s.slug == here else ""}>'
                    f"{html.escape(s.name)}</option>"
                    for s in config.sectors
                )
                parts.append(
                    f"<p>{html.escape(story.title)}</p>"
                    f'<form method="post" action="/move">'
                    f'<input type="hidden" name="token" value="{self.token}">'
                    f'<input type="hidden" name="story" value="{html.escape(story.id)}">'
                    f'<select name="sector" aria-label="Sector">{options}</select>'
                    f"<button>Move</button></form>"
                )
        return "".join(parts)

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
        # page is not reloaded again for it
        await asyncio.to_thread(self._wait_past, before, 2.0)
        return RedirectResponse("/", status_code=303)

    def _save_move(self, story: str, slug: str) -> Path:
        """The editor's move, into the day's overrides file (read and written in a thread)."""
        config = load_config(self.config_path)
        return save_move(config, flows.edition_date_for(config, self.now()), story, slug)

    def _wait_past(self, generation: int, seconds: float) -> None:
        with self._changed:
            self._changed.wait_for(
                lambda: self._generation != generation or self._stop.is_set(), timeout=seconds
            )

    def digest_html(self, request: Request) -> Response:
        """The email's HTML; ``?scheme=dark`` shows its dark variant whatever the browser's
        setting (the dark styles applied unconditionally)."""
        try:
            body = self.render_current().html
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
            return PlainTextResponse(self.render_current().text)
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
