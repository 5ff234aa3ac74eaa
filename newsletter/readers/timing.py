"""When a reader gets an edition: a time zone, a local delivery hour, daily or weekly on a
weekday (``Slot``), and the moment each slot is due on a date.

A slot is due at its local hour on the edition's date in its zone, across daylight-saving
changes: 07:00 in New York is 12:00 UTC in winter and 11:00 in summer; a local time a change
skips (02:30 on the spring-forward night) is taken at the offset before the change, and one it
repeats at the first of its two moments, so every slot is due once each day. Asia/Kolkata's
07:00 is 01:30 UTC: slots are due at any minute, not only on the hour.

Readers who chose nothing keep the publisher's schedule: ``schedule.send_at`` in
``schedule.timezone``. An hour the publisher no longer offers falls back to ``send_at``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from newsletter.config.settings import ScheduleConfig
from newsletter.config.values import time_zone_problem
from newsletter.errors import SubscriberError
from newsletter.models.readers import (
    MAX_WATCHLIST,
    EditionKind,
    Frequency,
    Slot,
    Subscriber,
    term_core,
)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
DEFAULT_WEEKDAY = 0  # a weekly reader who chose no day: Monday
MAX_TERM = 60  # characters in one watchlist term


def zone_of(slot: Slot, schedule: ScheduleConfig) -> ZoneInfo:
    try:
        return ZoneInfo(slot.timezone or schedule.timezone)
    except (ZoneInfoNotFoundError, ValueError):  # a zone the system no longer knows
        return ZoneInfo(schedule.timezone)


def local_time(slot: Slot, schedule: ScheduleConfig) -> time:
    if slot.hour is not None and slot.hour in schedule.hours:
        return time(slot.hour)
    return schedule.send_at


def weekday_of(slot: Slot) -> int:
    return DEFAULT_WEEKDAY if slot.weekday is None else slot.weekday


def due_at(slot: Slot, day: date, schedule: ScheduleConfig) -> datetime:
    """The moment (UTC) the slot's readers get the edition of ``day``."""
    local = datetime.combine(day, local_time(slot, schedule), tzinfo=zone_of(slot, schedule))
    return local.astimezone(UTC)


def sends_on(slot: Slot, day: date, schedule: ScheduleConfig) -> bool:
    """Whether the slot's readers get an edition dated ``day``."""
    if slot.frequency == Frequency.WEEKLY:
        return day.weekday() == weekday_of(slot)
    return not schedule.weekdays or WEEKDAYS[day.weekday()] in schedule.weekdays


def describe(slot: Slot, schedule: ScheduleConfig) -> str:
    """ "07:00 Asia/Kolkata", "weekly on Friday at 08:00 Europe/Paris"."""
    at = f"{local_time(slot, schedule):%H:%M} {zone_of(slot, schedule).key}"
    if slot.frequency == Frequency.WEEKLY:
        return f"weekly on {WEEKDAY_NAMES[weekday_of(slot)]} at {at}"
    return at


@dataclass(frozen=True, slots=True)
class Due:
    """A slot on a date: when its readers get that date's edition, and how many they are."""

    slot: Slot
    day: date
    at: datetime  # UTC
    readers: int


def days_in_progress(now: datetime) -> list[date]:
    """The edition dates some zone can be delivering at ``now``: local dates run from UTC+14
    to UTC-12, so the UTC date and its neighbours."""
    today = now.astimezone(UTC).date()
    return [today - timedelta(days=1), today, today + timedelta(days=1)]


def plan(
    slots: Iterable[tuple[Slot, int]], day: date, kind: EditionKind, schedule: ScheduleConfig
) -> list[Due]:
    """The slots that get the ``kind`` edition of ``day``, earliest first."""
    out = [
        Due(slot, day, due_at(slot, day, schedule), readers)
        for slot, readers in slots
        if slot.kind == kind and sends_on(slot, day, schedule)
    ]
    return sorted(out, key=lambda d: (d.at, d.slot))


# a reader's choices, checked ------------------------------------------------------------------


def checked_zone(value: str) -> str:
    """A time zone as a reader gave it ("" for the publisher's); ValueError says what is
    wrong, with the nearest IANA name when there is one."""
    value = value.strip()
    if not value:
        return ""
    problem = time_zone_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def checked_hour(value: str | int | None, schedule: ScheduleConfig) -> int | None:
    """A delivery hour the publisher offers (None: the schedule's send_at)."""
    if value is None or value == "":
        return None
    try:
        hour = int(str(value).strip().split(":")[0])
    except ValueError:
        raise ValueError(f"{value!r} is not an hour") from None
    if hour not in schedule.hours:
        offered = ", ".join(f"{h:02d}:00" for h in schedule.hours)
        raise ValueError(f"{hour:02d}:00 is not a delivery hour; choose one of {offered}")
    return hour


def checked_frequency(value: str) -> Frequency:
    text = value.strip().lower() or Frequency.DAILY
    try:
        return Frequency(text)
    except ValueError:
        raise ValueError(f"{value!r} is not a frequency; choose daily or weekly") from None


def checked_weekday(value: str | int | None) -> int | None:
    """A weekday as 0-6, "mon" or "Monday" (None: Monday, the default)."""
    if value is None or value == "":
        return None
    text = str(value).strip().lower()
    if text.isdigit() and int(text) < 7:
        return int(text)
    for number, name in enumerate(WEEKDAY_NAMES):
        if text in {name.lower(), WEEKDAYS[number]}:
            return number
    raise ValueError(f"{value!r} is not a weekday; write mon, tue, ... sun")


def checked_watchlist(terms: Sequence[str] | str) -> tuple[str, ...]:
    """Up to ``MAX_WATCHLIST`` names or terms (a list, or one text split at commas, semicolons
    and line ends), each once whatever its case, none longer than ``MAX_TERM``."""
    if isinstance(terms, str):
        terms = terms.replace(";", ",").replace("\n", ",").split(",")
    out: dict[str, str] = {}
    for raw in terms:
        term = " ".join(raw.split())
        if not term:
            continue
        if len(term) > MAX_TERM:
            raise ValueError(f"{term[:20]!r}... is longer than {MAX_TERM} characters")
        if not any(ch.isalnum() for ch in term_core(term)):  # "<b></b>", "(🔋)"
            raise ValueError(f"{term!r} has no letter or digit to match")
        out.setdefault(term.casefold(), term)
    if len(out) > MAX_WATCHLIST:
        raise ValueError(f"{len(out)} terms: a watchlist holds at most {MAX_WATCHLIST}")
    return tuple(out.values())


def choices_of(reader: Subscriber) -> dict[str, object]:
    """A reader's choices as a consent event records them."""
    details: dict[str, object] = {"sectors": list(reader.sectors)}
    if reader.slot != Slot():
        details |= {
            "timezone": reader.timezone,
            "hour": reader.hour,
            "frequency": reader.frequency.value,
            "weekday": reader.weekday,
        }
    if reader.watchlist:
        details["watchlist"] = list(reader.watchlist)
    return details


def watchlist_terms(watchlist: Sequence[str]) -> tuple[str, ...]:
    """``checked_watchlist``, its complaint as a ``SubscriberError`` to show the reader."""
    try:
        return checked_watchlist(watchlist)
    except ValueError as exc:
        raise SubscriberError(
            f"watchlist: {exc}", hint=f"Follow up to {MAX_WATCHLIST} names or terms."
        ) from None


def slot_from(when: Mapping[str, str], schedule: ScheduleConfig) -> Slot:
    """A reader's delivery slot from a form's (or the shell's) fields: a known time zone, an
    hour the publisher offers, daily or weekly on a weekday; ``SubscriberError`` says what to
    correct."""
    hint = "Use a time zone's name, such as Europe/Paris or America/New_York."
    try:
        zone = checked_zone(when.get("timezone", ""))
        hint = "Choose one of the hours on offer (the publisher's schedule.delivery_hours)."
        hour = checked_hour(when.get("hour", ""), schedule)
        hint = "Choose daily or weekly, and a weekly edition's day: mon, tue, ... sun."
        return Slot(
            zone,
            hour,
            checked_frequency(when.get("frequency", "")),
            checked_weekday(when.get("weekday", "")),
        )
    except ValueError as exc:  # the hint of the field that failed
        raise SubscriberError(str(exc), hint=hint) from None
