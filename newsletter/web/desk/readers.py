"""``/desk/readers``: find readers by address, see one reader's status, sectors and consent
history, add one, unsubscribe one, erase a person (after a confirmation page), import a CSV
(the same line-by-line report as ``newsletter subscribers import``) and export the list. The
work is ``readers/``'s, as the CLI's is; each change is recorded in the reader's consent
history as the desk's (``Channel.DESK``, the editor's address) and in the audit log. No page
shows a reader's token.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from newsletter.errors import NewsletterError
from newsletter.models import AuditAction, Channel, Source, Subscriber, SubscriberStatus
from newsletter.readers import subscriptions
from newsletter.readers.export import export_lines
from newsletter.readers.roster import ImportReport, import_csv
from newsletter.readers.timing import describe
from newsletter.records import AuditTarget
from newsletter.web.desk.frame import Desk
from newsletter.web.desk.upload import upload_of
from newsletter.web.forms import BadRequest, chosen, one

PAGE = "/desk/readers"
FOUND = 50  # readers a search shows


class Readers:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        desk.add(PAGE, self.page)
        desk.add(PAGE + "/{id:int}", self.reader)
        desk.add(PAGE + "/{id:int}/erase", self.confirm_erase)
        desk.add_form(PAGE + "/{id:int}/erase", self._erase, back=PAGE)
        desk.add_form(PAGE + "/{id:int}/unsubscribe", self._unsubscribe, back=PAGE)
        desk.add(PAGE + "/add", self.add, methods=("POST",))
        desk.add(PAGE + "/import", self.import_file, methods=("POST",))
        desk.add(PAGE + "/export", self.export, methods=("POST",))

    def source(self, request: Request) -> Source:
        return Source(Channel.DESK, self.desk.editor(request).email)

    # --- pages -------------------------------------------------------------------------------

    def page(
        self,
        request: Request,
        status: int = 200,
        error: str = "",
        report: ImportReport | None = None,
        said: str = "",
    ) -> Response:
        asked = request.query_params.get("q", "")[:320]
        store = self.desk.store
        return self.desk.render(
            request,
            "readers.html.j2",
            "Readers",
            status,
            error=error,
            said=said,
            asked=asked,
            found=store.readers.search_readers(asked, limit=FOUND) if asked else [],
            limit=FOUND,
            counts=store.readers.status_counts(),
            statuses=list(SubscriberStatus),
            sectors=self.desk.config.sectors,
            report=report,
        )

    def reader(self, request: Request) -> Response:
        found = self._reader(request)
        if found is None:
            return self._gone(request)
        names = {s.slug: s.name for s in self.desk.config.sectors}
        return self.desk.render(
            request,
            "reader.html.j2",
            found.email,
            reader=found,
            sectors=[names.get(s, s) for s in found.sectors],
            when=describe(found.slot, self.desk.config.file.schedule),
            history=self.desk.store.readers.events_of(found.id),
            unsubscribed=SubscriberStatus.UNSUBSCRIBED,
            said=_SAID.get(request.query_params.get("done", ""), ""),
        )

    def confirm_erase(self, request: Request) -> Response:
        found = self._reader(request)
        if found is None:
            return self._gone(request)
        return self.desk.render(request, "erase.html.j2", f"Erase {found.email}?", reader=found)

    # --- changes -----------------------------------------------------------------------------

    def _erase(self, request: Request) -> Response:
        desk = self.desk
        found = self._reader(request)
        if found is None:
            return self._gone(request)
        subscriptions.erase_person(
            desk.config, desk.store, found.email, now=desk.now(), source=self.source(request)
        )
        desk.audit(
            desk.editor(request), AuditAction.READER_ERASED, AuditTarget("reader", str(found.id))
        )
        return desk.message(
            request,
            "Erased",
            f"{found.email} is erased: their row, consent history, queued mail and outbox "
            "copies are gone, and only a keyed hash stays in the suppression list, so no "
            "sign-up or import brings them back.",
            links=[("Back to the readers", PAGE)],
        )

    def _unsubscribe(self, request: Request) -> Response:
        desk = self.desk
        found = self._reader(request)
        if found is None:
            return self._gone(request)
        subscriptions.unsubscribe(
            desk.store, found.token, source=self.source(request), now=desk.now()
        )
        target = AuditTarget("reader", str(found.id))
        desk.audit(desk.editor(request), AuditAction.READER_UNSUBSCRIBED, target)
        return RedirectResponse(f"{PAGE}/{found.id}?done=stopped", status_code=303)

    async def add(self, request: Request) -> Response:
        try:
            fields = await self.desk.form(request)
            email = one(fields, "email", subscriptions.MAX_EMAIL)
            name = one(fields, "name", subscriptions.MAX_NAME_TYPED)
            sectors = chosen(fields)
            pending = one(fields, "status", 16) == SubscriberStatus.PENDING
        except BadRequest as exc:
            return self.desk.refused(request, exc, back=PAGE)
        return await run_in_threadpool(self._add, request, email, name, sectors, pending)

    def _add(
        self, request: Request, email: str, name: str, sectors: list[str], pending: bool
    ) -> Response:
        desk = self.desk
        try:
            reader, created = subscriptions.add_subscriber(
                desk.store,
                email,
                name=name,
                sectors=sectors,
                known_sectors=desk.config.sector_slugs,
                status=SubscriberStatus.PENDING if pending else SubscriberStatus.CONFIRMED,
                now=desk.now(),
                source=self.source(request),
            )
        except NewsletterError as exc:
            return self.page(request, 400, error=f"Not added: {exc.message}")
        target = AuditTarget("reader", str(reader.id))
        detail = "added" if created else "updated: name and sectors"
        desk.audit(desk.editor(request), AuditAction.READER_ADDED, target, detail)
        done = "added" if created else "updated"
        return RedirectResponse(f"{PAGE}/{reader.id}?done={done}", status_code=303)

    async def import_file(self, request: Request) -> Response:
        try:
            upload = await upload_of(request, field="file")
        except BadRequest as exc:
            return self.desk.refused(request, exc, back=PAGE)
        if not upload.data:
            return self.page(request, 400, error="Choose a CSV file to import.")
        return await run_in_threadpool(self._import, request, upload.name, upload.data)

    def _import(self, request: Request, name: str, data: bytes) -> Response:
        desk = self.desk
        editor = desk.editor(request)
        safe = re.sub(r"[^\w.-]+", "_", Path(name).name)[:80] or "upload.csv"
        with tempfile.TemporaryDirectory(prefix="desk-import-") as folder:
            path = Path(folder) / safe
            path.write_bytes(data)
            try:
                report = import_csv(
                    desk.store,
                    path,
                    known_sectors=desk.config.sector_slugs,
                    now=desk.now(),
                    source=Source(Channel.IMPORT, f"{safe} (desk: {editor.email})"),
                    schedule=desk.config.file.schedule,
                )
            except NewsletterError as exc:
                return self.page(request, 400, error=f"Not imported: {exc.message}")
        desk.audit(editor, AuditAction.READERS_IMPORTED, AuditTarget("readers", safe), _sum(report))
        return self.page(request, report=report, said=f"Imported {safe}: {_sum(report)}.")

    async def export(self, request: Request) -> Response:
        try:
            fields = await self.desk.form(request)
            status = one(fields, "status", 16)
        except BadRequest as exc:
            return self.desk.refused(request, exc, back=PAGE)
        chosen_status = SubscriberStatus(status) if status in set(SubscriberStatus) else None
        desk = self.desk
        await run_in_threadpool(
            desk.audit,
            desk.editor(request),
            AuditAction.READERS_EXPORTED,
            AuditTarget("readers", ""),
            status or "every status",
        )
        lines: Iterator[str] = export_lines(desk.store, status=chosen_status)
        name = f"readers-{status or 'all'}-{desk.now():%Y-%m-%d}.csv"
        return StreamingResponse(
            lines,  # a plain iterator: Starlette reads it in the thread pool
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{name}"',
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )

    # --- helpers -----------------------------------------------------------------------------

    def _reader(self, request: Request) -> Subscriber | None:
        return self.desk.store.readers.subscriber_by_id(int(request.path_params["id"]))

    def _gone(self, request: Request) -> Response:
        return self.desk.message(
            request,
            "No such reader",
            "No reader has that number (erased, or never one).",
            status=404,
            links=[("Back to the readers", PAGE)],
        )


_SAID = {
    "stopped": "Unsubscribed: no more editions go to this address.",
    "added": "Added.",
    "updated": "Already a reader: their name and sectors are updated; their status is unchanged.",
}


def _sum(report: ImportReport) -> str:
    return (
        f"{report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
        f"{len(report.skipped)} skipped, {len(report.rejected)} rejected"
    )
