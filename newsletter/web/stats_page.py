"""The editor's statistics page on the preview server (``/stats``): a chart of the last 30
editions (delivered, opens, clicks, bounces, complaints), their numbers in a table, and the
most-clicked stories of one edition (``?date=YYYY-MM-DD``, else the newest with clicks).
Before the first edition it says so, and when the first one goes and what will show.

The chart is an inline SVG drawn on the server: no script, no library, readable without
JavaScript; the table beside it holds the same numbers for screen readers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from newsletter.config import load_config
from newsletter.delivery import stats
from newsletter.edition.render import make_environment, render_page
from newsletter.errors import NewsletterError
from newsletter.records import EditionStats
from newsletter.store import Store

WIDTH, HEIGHT, PAD = 760, 280, 44
# (label, colour, the count): each a line of the chart
SERIES: tuple[tuple[str, str, Callable[[EditionStats], int]], ...] = (
    ("Delivered", "#0b4f8a", lambda e: e.delivered),
    ("Opens*", "#b7791f", lambda e: e.opens),
    ("Clicks", "#2f855a", lambda e: e.clicks),
    ("Bounces", "#c53030", lambda e: e.bounced),
    ("Complaints", "#6b46c1", lambda e: e.complaints),
)


@dataclass(frozen=True, slots=True)
class Line:
    label: str
    colour: str
    points: str  # the SVG polyline's "x,y x,y ..."
    dots: tuple[tuple[float, float, int], ...]  # (x, y, value) per edition


def chart(editions: Sequence[EditionStats]) -> tuple[list[Line], list[tuple[float, str]], int]:
    """The lines, the x-axis labels (x, date) and the y-axis top for the editions."""
    top = max([1, *(count(e) for e in editions for _, _, count in SERIES)])
    step = (WIDTH - 2 * PAD) / max(1, len(editions) - 1)

    def x(i: int) -> float:
        return round(PAD + i * step, 1)

    def y(value: int) -> float:
        return round(HEIGHT - PAD - float(value) / top * (HEIGHT - 2 * PAD), 1)

    lines = []
    for label, colour, count in SERIES:
        dots = tuple((x(i), y(count(e)), count(e)) for i, e in enumerate(editions))
        lines.append(Line(label, colour, " ".join(f"{a},{b}" for a, b, _ in dots), dots))
    every = max(1, len(editions) // 6)
    ticks = [(x(i), e.edition_date.strftime("%d %b")) for i, e in enumerate(editions)][::every]
    return lines, ticks, top


class StatsPage:
    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path

    def routes(self) -> list[Route]:
        return [Route("/stats", self.page)]

    def page(self, request: Request) -> Response:
        try:
            config = load_config(self.config_path)
            store = Store.open(config.database_url, privacy_key=config.privacy_key())
            try:
                editions = store.events.edition_counts(last=30)  # the chart needs no stories
                chosen = _chosen(request.query_params.get("date", ""), editions)
                detail = stats.edition_stats(store, dates=[chosen]) if chosen else []
            finally:
                store.close()
        except NewsletterError as exc:
            return HTMLResponse(f"<p>{exc.message}</p>", status_code=500)
        lines, ticks, top = chart(editions)
        schedule, sendgrid = config.file.schedule, config.file.delivery.sendgrid
        context = {
            "publication": config.publication.name,
            "editions": editions,
            "lines": lines,
            "ticks": ticks,
            "top": top,
            "width": WIDTH,
            "height": HEIGHT,
            "pad": PAD,
            "detail": detail[0] if detail else None,
            "caveat": stats.OPENS_CAVEAT,
            "warnings": [w for e in editions for w in stats.warnings(e)],
            # the empty page says when the first edition goes and what will show
            "send_at": f"{schedule.send_at:%H:%M}",
            "timezone": schedule.timezone,
            "tracking": config.file.delivery.backend == "sendgrid"
            and (sendgrid.track_opens or sendgrid.track_clicks),
        }
        env = make_environment(config.templates_dir)
        return HTMLResponse(render_page(env, "web/stats.html.j2", context))


def _chosen(asked: str, editions: Sequence[EditionStats]) -> date | None:
    """The edition whose stories are listed: the asked date, else the newest with clicks."""
    if asked:
        try:
            return date.fromisoformat(asked)
        except ValueError:
            return None
    clicked = [e.edition_date for e in editions if e.clicks]
    return clicked[-1] if clicked else (editions[-1].edition_date if editions else None)
