"""``/desk/today``: today's edition before it goes, as readers will get it (the email itself,
every sector: the brief, the sections, "more"), with its stories and what an editor may change:
pin, drop, move to another sector, "why it matters", the subject, the intro and the note. Each
change is a form posted at once and kept in the day's overrides file (``flows.desk``); the
page says what happened, also when another editor changed the file meanwhile (applied on top,
both kept; or refused with the value now there). With ``schedule.require_approval`` the page
has the "Approve" button the scheduled send waits for. A test copy goes to the editor's own
address. Once the edition is frozen or sent the page shows it as stored, without the forms.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime, timedelta

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from newsletter.config.dayedits import Change, Edited, Outcome, Part, day_path, version_of
from newsletter.delivery.mailers import make_mailer
from newsletter.edition import digest
from newsletter.edition.brief import capped_more, pick
from newsletter.edition.filters import longdate
from newsletter.errors import ConfigError, InputError, NewsletterError
from newsletter.flows import desk as flows_desk
from newsletter.flows.build import edition_date_for
from newsletter.models import AuditAction, Edition, EditionStatus, RenderedEmail, Sector, Story
from newsletter.records import AuditTarget
from newsletter.web.desk.frame import Desk
from newsletter.web.forms import BadRequest, one

PAGE = "/desk/today"
MAX_TEXT = 1_000  # a posted field; the overrides file's own limits say the rest
NAMES = {
    Part.PIN: "the pin",
    Part.DROP: "the drop",
    Part.MOVE: "the sector",
    Part.WHY: "“why it matters”",
    Part.SUBJECT: "the subject",
    Part.INTRO: "the intro",
    Part.NOTE: "the note",
}
DONE = {
    Outcome.APPLIED: "Saved: the email below shows it.",
    Outcome.ON_TOP: "Saved. Another editor changed something else in the edition meanwhile: "
    "both changes are kept, and the email below shows them.",
    Outcome.UNCHANGED: "Nothing to change: it already was so (another editor did the same).",
}
FIXED = {
    EditionStatus.FROZEN: "Frozen for sending: this is the edition as readers will get it. It "
    "can no longer change.",
    EditionStatus.SENDING: "Being sent: this is the edition as readers are getting it. It can "
    "no longer change.",
    EditionStatus.SENT: "Sent: this is the edition as readers got it. It can no longer change.",
}


@dataclasses.dataclass(frozen=True, slots=True)
class Listed:
    """A story as the page lists it: its section, and whether the email has it as one of the
    "more" headlines."""

    story: Story
    sector: Sector
    more: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class Group:
    """A heading of the page's list, as the email has it: the brief, or a section."""

    title: str
    anchor: str  # "brief", or the sector's slug
    rows: list[Listed]


REBUILD = timedelta(minutes=5)  # the longest a built edition is shown unchanged (freshness)


class Today:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        self._emails: dict[Edition, RenderedEmail] = {}  # the last few rendered, by edition
        self._kept: tuple[tuple[object, ...], datetime, flows_desk.Today] | None = None
        desk.add(PAGE, self.page)
        desk.add(f"{PAGE}/change", self.change, methods=("POST",))
        desk.add(f"{PAGE}/approve", self.approve, methods=("POST",))
        desk.add_form(f"{PAGE}/withdraw", self._withdraw, back=PAGE)
        desk.add_form(f"{PAGE}/test", self._test_copy, back=PAGE)

    def page(self, request: Request) -> Response:
        notices = []
        done = request.query_params.get("done", "")
        if done in Outcome._value2member_map_ and Outcome(done) in DONE:
            notices.append(DONE[Outcome(done)])
        notices += [text for key, text in _SAID.items() if request.query_params.get(key)]

        return self._show(request, notices)

    def _show(
        self, request: Request, notices: list[str], status: int = 200, error: str = ""
    ) -> Response:
        desk = self.desk
        try:
            today = self._today()
            email = self._email(today.edition) if today.edition is not None else None
        except NewsletterError as exc:
            return desk.message(request, "Today's edition", exc.message, exc.hint or "", status=500)
        if today.status is not None:
            notices.insert(0, FIXED[today.status])
        return desk.render(
            request,
            "today.html.j2",
            f"Today's edition, {longdate(today.day)}",
            status,
            error=error,
            notices=notices,
            today=today,
            email=email,
            groups=self._groups(today.edition),
            dropped=self._named(today.choices.get("drop") or []),
            sectors=desk.config.sectors,
            parts=Part,
            required=desk.config.file.schedule.require_approval is not None,
            approved=today.gate.state is flows_desk.Waiting.APPROVED,
            skipped=today.gate.state is flows_desk.Waiting.TIMED_OUT
            and today.gate.on_timeout != "send",
            address=desk.editor(request).email,
        )

    def _today(self) -> flows_desk.Today:
        """Today's edition, built again only when something it is built from changed: the
        overrides file, a collection, the stored edition's status; or after ``REBUILD``, for
        the stories' freshness."""
        desk = self.desk
        now = desk.now()
        day = edition_date_for(desk.config, now)
        stored = desk.store.editions.edition_ref(day)
        key = (
            day,
            version_of(day_path(desk.config, day)),
            desk.store.feeds.last_collected(),
            stored.status if stored is not None else None,
        )
        kept = self._kept
        if kept is not None and kept[0] == key and timedelta(0) <= now - kept[1] < REBUILD:
            return dataclasses.replace(kept[2], gate=flows_desk.gate(desk.config, day, now))
        today = flows_desk.today(desk.config, desk.store, now=now)
        self._kept = (key, now, today)
        return today

    def _named(self, keys: list[str]) -> list[tuple[str, str]]:
        """Each story id or link with what the page calls it: its headline and source, when
        stored (a link names itself)."""
        return [(str(key), self._title(str(key))) for key in keys]

    def _title(self, key: str) -> str:
        story = None if "/" in key else self.desk.store.stories.story(key)
        return f"{story.title} ({story.source})" if story is not None else key

    def _groups(self, edition: Edition | None) -> list[Group]:
        """The stories where the email of every sector has them: the brief's, then each
        section's leads and the "more" headlines the email keeps."""
        if edition is None:
            return []
        sections = digest.layout(edition)
        sectors = {s.sector.name: s.sector for s in sections}
        brief, rest = pick(edition, sections)
        groups = []
        if brief:
            title = "Today's brief" if len(brief) > 1 else "Top story"
            groups.append(
                Group(title, "brief", [Listed(i.story, sectors[i.sector]) for i in brief])
            )
        for section in capped_more(rest, self.desk.config.file.email.more_headlines):
            rows = [Listed(story, section.sector, more=False) for story in section.stories]
            rows += [Listed(story, section.sector, more=True) for story in section.more]
            groups.append(Group(section.sector.name, section.sector.slug, rows))
        return groups

    def _email(self, edition: Edition) -> RenderedEmail:
        """The email of every sector, rendered once per edition (a change makes another)."""
        email = self._emails.get(edition)
        if email is None:
            email = flows_desk.email_of(self.desk.config, edition)
            if len(self._emails) >= 4:
                self._emails.pop(next(iter(self._emails)))
            self._emails[edition] = email
        return email

    async def change(self, request: Request) -> Response:
        try:
            fields = await self.desk.form(request)
            change = _change_of(fields)
            seen = one(fields, "version", 64)
        except BadRequest as exc:
            return self.desk.refused(request, exc, back=PAGE)
        return await run_in_threadpool(self._change, request, change, seen)

    def _change(self, request: Request, change: Change, seen: str) -> Response:
        desk = self.desk
        editor = desk.editor(request)
        try:  # the approval the change may withdraw is in the same file: read under the same care
            approval = flows_desk.gate(
                desk.config, edition_date_for(desk.config, desk.now()), desk.now()
            )
            edited = flows_desk.change_today(
                desk.config, desk.store, change, seen=seen, now=desk.now()
            )
        except (ConfigError, InputError) as exc:  # what the editor asked cannot be taken
            return self._show(request, [], 422, error=f"Not saved: {exc.message}")
        except NewsletterError as exc:  # the edition can no longer change
            return self._show(request, [], 409, error=f"Not saved: {exc.message}")
        target = AuditTarget("edition", edited.path.stem)
        story = f" {change.story}" if change.story else ""
        # any change to the file withdraws an approval: said to the editor and in the log
        withdrew = approval.approval if edited.outcome in _SAVED else None
        detail = f"{change.part.value}{story}: {change.value!r} ({edited.outcome})"
        detail += " (withdrew the approval)" if withdrew else ""
        desk.audit(editor, AuditAction.EDITION_CHANGED, target, detail)
        if edited.outcome is Outcome.REFUSED:
            named = self._title(change.story) if change.story else ""
            return self._show(request, [], 409, error=_refusal(change, edited, named))
        anchor = f"#story-{change.story}" if change.story else f"#{change.part.value}"
        said = "&withdrew=1" if withdrew else ""  # (a query names no one: the page is told)
        return RedirectResponse(f"{PAGE}?done={edited.outcome.value}{said}{anchor}", 303)

    async def approve(self, request: Request) -> Response:
        try:
            fields = await self.desk.form(request)
            seen = one(fields, "version", 64)
        except BadRequest as exc:
            return self.desk.refused(request, exc, back=PAGE)
        return await run_in_threadpool(self._approve, request, seen)

    def _approve(self, request: Request, seen: str) -> Response:
        desk = self.desk
        editor = desk.editor(request)
        try:
            edited = flows_desk.approve_today(
                desk.config, desk.store, by=editor.email, seen=seen, now=desk.now()
            )
        except NewsletterError as exc:
            hint = f" {exc.hint}" if exc.hint else ""
            return self._show(request, [], 409, error=f"Not approved: {exc.message}.{hint}")
        if edited.outcome is Outcome.REFUSED:
            said = (
                "Not approved: the edition changed since you opened the page (another editor, "
                "or the file by hand). Look at it again below, then approve it."
            )
            return self._show(request, [], 409, error=said)
        desk.audit(editor, AuditAction.EDITION_APPROVED, AuditTarget("edition", edited.path.stem))
        return RedirectResponse(f"{PAGE}?approved=1#approval", status_code=303)

    def _withdraw(self, request: Request) -> Response:
        desk = self.desk
        try:
            edited = flows_desk.withdraw_today(desk.config, desk.store, now=desk.now())
        except NewsletterError as exc:
            return self._show(request, [], 409, error=f"Not withdrawn: {exc.message}")
        if edited.outcome is Outcome.APPLIED:
            target = AuditTarget("edition", edited.path.stem)
            desk.audit(desk.editor(request), AuditAction.EDITION_APPROVAL_WITHDRAWN, target)
        return RedirectResponse(f"{PAGE}?withdrawn=1#approval", status_code=303)

    def _test_copy(self, request: Request) -> Response:
        desk = self.desk
        editor = desk.editor(request)
        mailer = make_mailer(desk.config)
        try:
            flows_desk.send_test_copy(
                desk.config, desk.store, mailer, to=editor.email, now=desk.now()
            )
        except NewsletterError as exc:
            return self._show(request, [], 502, error=f"The test copy did not go: {exc.message}")
        finally:
            mailer.close()
        desk.audit(editor, AuditAction.TEST_SENT, AuditTarget("edition", ""), editor.email)
        return RedirectResponse(f"{PAGE}?tested=1#test", status_code=303)


_SAVED = (Outcome.APPLIED, Outcome.ON_TOP)
_SAID = {
    "approved": "Approved: the scheduled send goes ahead with this edition. Any change to it "
    "withdraws the approval.",
    "withdrawn": "The approval is withdrawn: the scheduled send waits for a new one.",
    "withdrew": "Your change withdrew the approval the edition had: the scheduled send waits "
    "for a new one (Approve, below).",
    "tested": "A test copy of the edition as it stands is on its way to your address.",
}


def _change_of(fields: Mapping[str, list[str]]) -> Change:
    part = one(fields, "part", 16)
    if part not in Part._value2member_map_:
        raise BadRequest(400, "That change is not one the desk knows.")
    return Change(
        Part(part),
        one(fields, "value", MAX_TEXT).strip(),
        one(fields, "was", MAX_TEXT).strip(),
        story=one(fields, "story", 200),
        link=one(fields, "link", 2_000),
    )


def _refusal(change: Change, edited: Edited, named: str) -> str:
    """What a refused change tells its editor: the value there now, and theirs, to redo."""
    what = NAMES[change.part]
    now, yours = edited.current or "nothing", f" Yours was “{change.value or 'nothing'}”."
    if change.part in {Part.PIN, Part.DROP}:
        now, yours = ("set" if edited.current else "not set"), ""
    story = f" of “{named}”" if named else ""
    return (
        f"Not saved: another editor changed {what}{story} while you were looking; it is now "
        f"“{now}”.{yours} The page below shows the edition as it is now: make your change "
        "again if it still stands."
    )
