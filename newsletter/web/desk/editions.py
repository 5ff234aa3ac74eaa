"""``/desk/editions``: the sent editions with their numbers (sent, delivered, bounces,
complaints, unsubscribes, opens, clicks; ``delivery.stats``) and the chart of ``/stats``;
``/desk/editions/DAY``: one edition's numbers, its most-clicked stories and clicks per sector,
and a link to the edition as sent (``/archive/DAY``).

Counting a month of editions reads every ledger row and event of it (millions with a large
list), so the counts are kept and counted again only when they may have changed
(``EventStore.counts_version``: a new event, ledger row or edition, an edition sent), at
most once every ``REFRESH``; the page says when they were counted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import date, datetime
from typing import TypeVar

from starlette.requests import Request
from starlette.responses import Response

from newsletter.delivery import stats
from newsletter.records import EditionStats
from newsletter.web.desk.frame import Desk
from newsletter.web.stats_page import HEIGHT, PAD, WIDTH, chart

PAGE = "/desk/editions"
LAST = 30  # editions charted and listed
REFRESH = 60.0  # seconds: counts are kept this long at least, and longer while unchanged
T = TypeVar("T")


class Counted:
    """Values computed from the counts, kept until the counts may have changed."""

    def __init__(self, version: Callable[[], str], refresh: float = REFRESH) -> None:
        self.version, self.refresh = version, refresh
        self._kept: dict[object, tuple[str, float, datetime, object]] = {}
        self._lock = threading.Lock()

    def get(self, key: object, compute: Callable[[], T], now: datetime) -> tuple[T, datetime]:
        """The value for ``key`` and when it was counted."""
        version = self.version()
        with self._lock:
            kept = self._kept.get(key)
        # unchanged, or changed within the last ``refresh``: events stream in for days after a
        # send, and counting them all again for each one would cost every page the count
        if kept is not None and (kept[0] == version or time.monotonic() - kept[1] < self.refresh):
            return kept[3], kept[2]  # type: ignore[return-value]
        value = compute()
        with self._lock:
            if len(self._kept) > 64:
                self._kept.clear()
            self._kept[key] = (version, time.monotonic(), now, value)
        return value, now


class Editions:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        self.counted = Counted(desk.store.events.counts_version)
        desk.add(PAGE, self.page)
        desk.add(PAGE + "/{day}", self.edition)

    def page(self, request: Request) -> Response:
        store = self.desk.store
        editions, at = self.counted.get(
            "last", lambda: store.events.edition_counts(last=LAST), self.desk.now()
        )
        lines, ticks, top = chart(editions)
        return self.desk.render(
            request,
            "editions.html.j2",
            "Sent editions",
            editions=editions,
            counted_at=at,
            lines=lines,
            ticks=ticks,
            top=top,
            width=WIDTH,
            height=HEIGHT,
            pad=PAD,
            caveat=stats.OPENS_CAVEAT,
            warnings=[w for e in editions for w in stats.warnings(e)],
        )

    def edition(self, request: Request) -> Response:
        try:
            day = date.fromisoformat(request.path_params["day"])
        except ValueError:
            day = None
        found: list[EditionStats] = []
        at = self.desk.now()
        if day is not None:
            store = self.desk.store
            found, at = self.counted.get(
                day, lambda: stats.edition_stats(store, dates=[day], stories=20), at
            )
        if not found:
            return self.desk.message(
                request,
                "No such edition",
                "No edition was sent on that day.",
                status=404,
                links=[("The sent editions", PAGE)],
            )
        edition = found[0]
        return self.desk.render(
            request,
            "edition.html.j2",
            f"The edition of {edition.edition_date}",
            edition=edition,
            counted_at=at,
            caveat=stats.OPENS_CAVEAT,
            warnings=stats.warnings(edition),
            sectors={s.slug: s.name for s in self.desk.config.sectors},
        )
