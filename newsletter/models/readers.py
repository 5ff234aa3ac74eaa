"""A reader as every layer sees them: their status, and what they chose besides their sectors
(when and how often they get an edition, ``Slot``; the names or terms they follow). Part of
the vocabulary: ``newsletter.models`` names each of these too."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum


class SubscriberStatus(StrEnum):
    PENDING = "pending"  # signed up, not confirmed yet
    CONFIRMED = "confirmed"  # gets the digest
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"  # the address bounced hard (or softly too often): no more mail to it


class Frequency(StrEnum):  # how often a reader gets an edition
    DAILY = "daily"
    WEEKLY = "weekly"  # on the reader's weekday: the week's biggest storylines


class EditionKind(StrEnum):
    DAILY = "daily"  # the day's edition, one per date
    WEEKLY = "weekly"  # the week to that date, for weekly readers

    @property
    def readers(self) -> Frequency:
        """The readers an edition of this kind goes to (``Slot.kind`` the other way)."""
        return Frequency.WEEKLY if self == EditionKind.WEEKLY else Frequency.DAILY


@dataclass(frozen=True, slots=True)
class Subscriber:
    """A reader. ``sectors`` empty means every sector."""

    id: int
    email: str  # normalised
    name: str = ""
    sectors: tuple[str, ...] = ()
    status: SubscriberStatus = SubscriberStatus.CONFIRMED
    token: str = ""  # secret, in the reader's unsubscribe and preferences links
    watchlist: tuple[str, ...] = ()  # names or terms followed, at most ``MAX_WATCHLIST``
    timezone: str = ""  # IANA name; "": the schedule's
    hour: int | None = None  # local delivery hour; None: the schedule's ``send_at``
    frequency: Frequency = Frequency.DAILY
    weekday: int | None = None  # a weekly reader's day, 0 = Monday; None: Monday

    @property
    def slot(self) -> Slot:
        return Slot(self.timezone, self.hour, self.frequency, self.weekday)


MAX_WATCHLIST = 10  # terms a reader can follow


@dataclass(frozen=True, slots=True, order=True)
class Slot:
    """The readers who share a time zone, a local hour, a frequency and a weekday, as stored.
    When it is due: ``readers.timing``."""

    timezone: str = ""  # IANA name; "": the schedule's
    hour: int | None = None  # None: the schedule's send_at
    frequency: Frequency = Frequency.DAILY
    weekday: int | None = None  # a weekly slot's day, 0 = Monday; None: the default day

    @property
    def kind(self) -> EditionKind:
        """The edition its readers get."""
        return EditionKind.WEEKLY if self.frequency == Frequency.WEEKLY else EditionKind.DAILY


DEFAULT_SLOT = Slot()  # a reader who chose nothing: the schedule's send_at in its zone


_TAG = re.compile(r"<[^>]*>")
_AROUND = "()[]{}<>\"'\u2018\u2019\u201c\u201d\u00ab\u00bb*_~`|,;:!?/\\ "


def term_core(term: str) -> str:
    """What a watchlist term names: without tags, emoji and other symbols (a name's own
    ``+ & $ # %`` stay: "C++", "AT&T"), and without the brackets and quotes around it."""
    kept = "".join(
        ch
        for ch in _TAG.sub(" ", term)
        if ch in "+&$#%" or not unicodedata.category(ch).startswith(("S", "C"))
    )
    return " ".join(kept.split()).strip(_AROUND)
