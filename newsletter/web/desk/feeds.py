"""``/desk/feeds``: the health of every feed (status, last success, stories in the last 24
hours, failures, last error, a permanent move, gone), as ``newsletter status`` shows it, with
"retry now" for a failing or gone feed: a POST that collects that feed once (a gone one too) and
says how it went. The list of feeds itself stays in ``config.yaml``."""

from __future__ import annotations

from datetime import timedelta

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from newsletter.errors import NewsletterError
from newsletter.flows import collect_all
from newsletter.models import AuditAction, FeedStatus, FetchOutcome
from newsletter.records import AuditTarget, FeedHealth
from newsletter.web.desk.frame import Desk
from newsletter.web.forms import BadRequest, one

PAGE = "/desk/feeds"


class Feeds:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        desk.add(PAGE, self.page)
        desk.add(PAGE + "/retry", self.retry, methods=("POST",))

    def page(
        self, request: Request, said: str = "", error: str = "", status: int = 200
    ) -> Response:
        desk = self.desk
        now = desk.now()
        known = {h.url: h for h in desk.store.feeds.feed_health(now=now)}
        flag = timedelta(hours=desk.config.file.collect.flag_failing_after_hours)
        rows = [(feed, known.get(feed.url)) for feed in desk.config.feeds]
        return desk.render(
            request,
            "feeds.html.j2",
            "Feeds",
            status,
            error=error,
            said=said,
            rows=rows,
            failing=lambda h: _failing(h),
            flagged=lambda h: (
                h is not None and h.failing_since is not None and now - h.failing_since > flag
            ),
            gone=FeedStatus.GONE,
        )

    async def retry(self, request: Request) -> Response:
        try:
            fields = await self.desk.form(request)
            url = one(fields, "url", 2_000)
        except BadRequest as exc:
            return self.desk.refused(request, exc, back=PAGE)
        return await run_in_threadpool(self._retry, request, url)

    def _retry(self, request: Request, url: str) -> Response:
        desk = self.desk
        feed = next((f for f in desk.config.feeds if f.url == url), None)
        if feed is None:
            return self.page(request, error="That feed is not in config.yaml.", status=404)
        try:
            report = collect_all(
                desk.config, desk.store, now=desk.now(), retry_gone=True, only=[url]
            )
        except NewsletterError as exc:
            return self.page(request, error=f"{feed.name}: {exc.message}", status=500)
        result = report.results[0]
        desk.audit(
            desk.editor(request), AuditAction.FEED_RETRIED, AuditTarget("feed", url), result.status
        )
        if result.status in {FetchOutcome.OK, FetchOutcome.NOT_MODIFIED}:
            said = f"{feed.name}: fetched now ({result.status}), {result.new} new stories."
            return self.page(request, said=said)
        return self.page(request, error=f"{feed.name}: still failing: {result.error}", status=502)


def _failing(health: FeedHealth | None) -> bool:
    return health is not None and (
        health.status == FeedStatus.GONE or health.consecutive_failures > 0
    )
