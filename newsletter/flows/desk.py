"""The desk's flows for today's edition before it goes: the edition as readers will get it
(built afresh, or as stored once frozen or sent), one editor's change applied to the day's
overrides file (``config.dayedits``: two editors at once, never one lost), the approval the
scheduled send may wait for (``gate``), and a test copy to the editor's own address.

The approval (``schedule.require_approval``) covers the editor's choices, the day's overrides
file: any change to it, on the desk or by hand, withdraws it. Stories collected after it
still take their places in the edition, as they would without one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from newsletter.config import Config
from newsletter.config import dayedits as edits
from newsletter.config.editorial import Approval
from newsletter.delivery.deliver import send_test
from newsletter.delivery.mailers import Mailer
from newsletter.edition import digest, personalize, render
from newsletter.errors import EditionError, InputError
from newsletter.flows.build import build, edition_date_for
from newsletter.models import Edition, EditionStatus, RenderedEmail
from newsletter.readers.links import preview_values
from newsletter.store import Store

logger = logging.getLogger("newsletter.run")  # the scheduler's log: the send's wait is its


class Waiting(StrEnum):
    """Where the day's scheduled send stands with the approval it may need."""

    NOT_REQUIRED = "not-required"  # schedule.require_approval is off
    APPROVED = "approved"
    WAITING = "waiting"  # for an editor's "Approve", until the deadline
    TIMED_OUT = "timed-out"  # the deadline passed without one: on_timeout says what happens


@dataclass(frozen=True, slots=True)
class Gate:
    state: Waiting
    approval: Approval | None = None
    deadline: datetime | None = None  # aware, in the schedule's zone
    on_timeout: str = ""  # "send" or "skip"

    def says(self) -> str:
        """One line for ``status``, the log and the desk."""
        if self.state is Waiting.NOT_REQUIRED:
            return "no approval needed (schedule.require_approval is off)"
        if self.state is Waiting.APPROVED:
            assert self.approval is not None
            return f"approved by {self.approval.by} at {self.approval.at:%H:%M %Z}".strip()
        assert self.deadline is not None
        deadline = f"{self.deadline:%H:%M} ({self.deadline.tzinfo})"
        if self.state is Waiting.WAITING:
            return f"waiting for an editor's approval until {deadline}, then {self.on_timeout}"
        if self.on_timeout == "send":
            return f"not approved by {deadline}: sent without an approval (on_timeout: send)"
        return f"not approved by {deadline}: not sent (on_timeout: skip)"


def gate(config: Config, day: date, now: datetime) -> Gate:
    """Whether the day's scheduled send may go: approved, still waiting, or past the deadline."""
    schedule = config.file.schedule
    required = schedule.require_approval
    if required is None:
        return Gate(Waiting.NOT_REQUIRED)
    approval = edits.approval_of(config, day)
    deadline = datetime.combine(day, required.deadline, tzinfo=ZoneInfo(schedule.timezone))
    # an approval after a deadline that skipped the day is none: the day was said skipped
    if approval is not None and (approval.at <= deadline or required.on_timeout == "send"):
        return Gate(Waiting.APPROVED, approval, deadline, required.on_timeout)
    state = Waiting.WAITING if now < deadline else Waiting.TIMED_OUT
    return Gate(state, None, deadline, required.on_timeout)


@dataclass(frozen=True, slots=True)
class Today:
    """Today's edition as the desk shows it, with what an editor's change needs."""

    day: date
    edition: Edition | None  # None: no edition today (``reason``)
    status: EditionStatus | None  # the stored edition's, once frozen or sent: no more changes
    reason: str
    version: str  # of the overrides file, which each change carries back
    choices: dict[str, Any]  # the file's data: the values each change says it saw
    gate: Gate

    @property
    def editable(self) -> bool:
        return self.edition is not None and self.status is None

    def seen(self, part: edits.Part, story: str = "", link: str = "") -> str:
        """The value of a part as the page shows it (the ``was`` of its form)."""
        return edits.value_of(self.choices, part, tuple(k for k in (story, link) if k))


def today(config: Config, store: Store, *, now: datetime) -> Today:
    """Today's edition: the stored one once it is frozen or sent, else built now."""
    day = edition_date_for(config, now)
    path = edits.day_path(config, day)
    version, choices = edits.read_day(path)  # before the build reads it: never newer
    stored = store.editions.edition(day)
    waiting = gate(config, day, now)
    if stored is not None and stored.status in EditionStatus.fixed():
        return Today(day, stored.edition, stored.status, "", version, choices, waiting)
    # the page changes nothing: no labels written, no writer asked (it wrote ahead, or not)
    built = build(config, store, now=now, ask_writer=False, labels=False)
    return Today(day, built.edition, None, built.reason, version, choices, waiting)


def email_of(config: Config, edition: Edition, sectors: tuple[str, ...] = ()) -> RenderedEmail:
    """The email a reader of ``sectors`` (all by default) gets, with stand-in personal values."""
    env = render.make_environment(config.templates_dir)
    sections = digest.layout(edition, sectors)
    settings = render.settings_for(config)
    variant = render.render_email(env, edition, sections, settings=settings, chosen=sectors)
    return personalize.Personalizer(variant).fill(preview_values(config.publication.base_url))


def _open_day(config: Config, store: Store, now: datetime) -> date:
    """Today's date, while its edition can still change (refused once frozen or sent)."""
    day = edition_date_for(config, now)
    stored = store.editions.edition_ref(day)
    if stored is not None and stored.status in EditionStatus.fixed():
        raise EditionError(
            f"the edition of {day} is {stored.status}: it can no longer change",
            day=day,
            hint="Changes and approvals apply to an edition not yet frozen for sending.",
        )
    return day


def change_today(
    config: Config, store: Store, change: edits.Change, *, seen: str, now: datetime
) -> edits.Edited:
    """One editor's change to today's edition, kept in the day's overrides file; a story the
    store does not hold is refused (``InputError``), as a change to it would change nothing."""
    day = _open_day(config, store, now)
    if change.part.of_story and change.story and store.stories.story(change.story) is None:
        raise InputError(
            f"there is no story {change.story} in today's stories",
            hint="Reload the page: a change names a story it shows.",
        )
    return edits.edit_day(config, day, change, seen=seen)


def approve_today(
    config: Config, store: Store, *, by: str, seen: str, now: datetime
) -> edits.Edited:
    """An editor's approval of today's edition as they saw it (refused if it changed since,
    or once a deadline without one skipped the day)."""
    day = _open_day(config, store, now)
    state = gate(config, day, now)
    if state.state is Waiting.TIMED_OUT and state.on_timeout != "send":
        assert state.deadline is not None
        raise EditionError(
            f"the deadline, {state.deadline:%H:%M} ({state.deadline.tzinfo}), passed without an "
            f"approval, so the scheduled send skips the edition of {day} (on_timeout: skip)",
            day=day,
            hint=f"To send it anyway, run: newsletter --config {config.path} send",
        )
    return edits.approve_day(config, day, by=by, at=now, seen=seen)


def withdraw_today(config: Config, store: Store, *, now: datetime) -> edits.Edited:
    """Today's approval taken back: the scheduled send waits for a new one."""
    return edits.withdraw_day(config, _open_day(config, store, now))


def send_test_copy(config: Config, store: Store, mailer: Mailer, *, to: str, now: datetime) -> str:
    """A copy of today's edition as it stands (every sector), marked as a test, to ``to``
    through the configured mailer; the ledger records nothing. Returns the message id."""
    shown = today(config, store, now=now)
    if shown.edition is None:
        raise EditionError(f"No edition today: {shown.reason}", day=shown.day)
    return send_test(config, mailer, email_of(config, shown.edition), to, day=shown.day)
