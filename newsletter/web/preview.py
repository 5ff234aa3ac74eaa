"""The editor's live preview: ``newsletter preview --serve``.

``/`` shows the digest at desktop and phone widths side by side and reloads itself when a
template or the config changes; ``/digest.html`` and ``/digest.txt`` are rendered afresh on every
request from the stored stories, so an edit shows at once. A template or config error is shown
on the page (file, line, message) instead of stopping the server.
"""

from __future__ import annotations

import hashlib
import html
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from newsletter import digest, pipeline, render
from newsletter.config import load_config
from newsletter.errors import NewsletterError
from newsletter.models import RenderedEmail
from newsletter.store import Store

logger = logging.getLogger(__name__)

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Preview: {title}</title>
<style>
 body {{ margin: 0; font: 14px/1.4 system-ui, sans-serif; background: #e4e7eb; color: #1f2933; }}
 header {{ padding: 10px 16px; background: #102a43; color: #fff; }}
 header p {{ margin: 2px 0; color: #d9e2ec; }}
 main {{ display: flex; gap: 24px; padding: 16px; align-items: flex-start; overflow-x: auto; }}
 figure {{ margin: 0; }} figcaption {{ font-weight: 600; padding-bottom: 6px; }}
 iframe {{ border: 1px solid #9aa5b1; background: #fff; height: 88vh; }}
</style></head>
<body><header><strong>{title}</strong><p>{details}</p></header>
<main>
 <figure><figcaption>Desktop, 640 px</figcaption>
  <iframe title="The digest at desktop width" src="/digest.html" width="640"></iframe></figure>
 <figure><figcaption>Phone, 375 px</figcaption>
  <iframe title="The digest at phone width" src="/digest.html" width="375"></iframe></figure>
</main>
<script>
 let seen = "{version}";
 setInterval(async () => {{
   try {{
     const now = (await (await fetch("/version")).json()).version;
     if (now !== seen) {{ location.reload(); }}
   }} catch (e) {{}}
 }}, 1000);
</script></body></html>
"""

ERROR_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Preview error</title></head>
<body style="font: 15px/1.5 system-ui, sans-serif; padding: 24px; color: #1f2933;">
<h1 style="color: #b42318; font-size: 20px;">The digest could not be rendered</h1>
<pre style="white-space: pre-wrap; background: #fef3f2; padding: 12px;">{message}</pre>
<p>{hint}</p><p>Fix it and save: this page reloads by itself.</p></body></html>
"""


def create_app(
    config_path: Path,
    *,
    sectors: Sequence[str] = (),
    now: Callable[[], datetime],
) -> Starlette:
    """The preview app for one config file; ``now`` is the clock (the CLI passes the real one)."""

    def render_current() -> RenderedEmail:
        config = load_config(config_path)
        store = Store.open(config.database_url)
        try:
            built = pipeline.build(config, store, now=now())
        finally:
            store.close()
        if built.edition is None:
            raise NewsletterError(f"No edition today: {built.reason}")
        env = render.make_environment(config.templates_dir)
        sections = digest.layout(built.edition, sectors)
        variant = render.render_email(
            env, built.edition, sections, settings=pipeline.render_settings(config)
        )
        values = render.preview_values(config.publication.base_url)
        return render.Personalizer(variant).fill(values)

    def error_response(exc: NewsletterError) -> HTMLResponse:
        logger.warning("preview: %s", exc.message)
        page = ERROR_PAGE.format(message=html.escape(exc.message), hint=html.escape(exc.hint or ""))
        return HTMLResponse(page, status_code=500)

    async def index(request: Request) -> Response:
        try:
            email = render_current()
            title = email.subject
            details = f"{len(email.html.encode()) / 1024:.1f} KB of HTML · {email.preheader}"
        except NewsletterError as exc:
            title, details = "Preview", f"Error: {exc.message}"
        return HTMLResponse(
            PAGE.format(
                title=html.escape(title),
                details=html.escape(details),
                version=_version(config_path),
            )
        )

    async def digest_html(request: Request) -> Response:
        try:
            return HTMLResponse(render_current().html)
        except NewsletterError as exc:
            return error_response(exc)

    async def digest_text(request: Request) -> Response:
        try:
            return PlainTextResponse(render_current().text)
        except NewsletterError as exc:
            return PlainTextResponse(f"{exc.message}\n{exc.hint or ''}\n", status_code=500)

    async def version(request: Request) -> Response:
        return JSONResponse({"version": _version(config_path)})

    return Starlette(
        routes=[
            Route("/", index),
            Route("/digest.html", digest_html),
            Route("/digest.txt", digest_text),
            Route("/version", version),
        ]
    )


def _version(config_path: Path) -> str:
    """Changes whenever the config or a template file changes."""
    paths = [config_path]
    try:
        config = load_config(config_path)
        if config.templates_dir is not None:
            paths += sorted(config.templates_dir.glob("*"))
    except NewsletterError:
        pass
    paths += sorted(render.BUILTIN_TEMPLATES.glob("*"))
    digest_ = hashlib.sha256()
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            continue
        digest_.update(f"{path}:{stat.st_mtime_ns}:{stat.st_size}\n".encode())
    return digest_.hexdigest()[:16]
