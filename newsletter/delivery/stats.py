"""What readers did with each edition: the store's counts, with each edition's clicks put on
its stories and sections (from the frozen edition), and the warnings a sender must heed.

Opens come from a tracking pixel, which Apple Mail Privacy Protection loads for every email
it receives: opens overstate readers, so they are shown with that caveat and never drive
anything. Opens and clicks are counted only when SendGrid's tracking is on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import date

from newsletter.records import EditionStats, StoryClicks
from newsletter.store import Store

OPENS_CAVEAT = (
    "Opens are inflated by Apple Mail Privacy Protection, which loads every email's images "
    "(so its readers all count as opens); clicks are the surer sign."
)
MAX_COMPLAINT_RATE = 0.001  # Gmail and Yahoo want complaints well under 0.3 %; we warn at 0.1 %
MAX_BOUNCE_RATE = 0.02


def edition_stats(
    store: Store,
    *,
    dates: Sequence[date] | None = None,
    last: int = 30,
    stories: int = 10,
    weekly: bool = False,
) -> list[EditionStats]:
    """The editions' counts, oldest first (``weekly``: the weekly ones too), each with its
    ``stories`` most-clicked stories and its clicks per sector."""
    out = []
    for counts in store.events.edition_counts(dates=dates, last=last, weekly=weekly):
        clicks = store.events.link_clicks(counts.edition_id) if counts.clicks else {}
        if not clicks:
            out.append(counts)
            continue
        stored = store.editions.edition(counts.edition_date, counts.kind)
        placed: dict[str, tuple[str, str]] = {}  # url -> (title, sector slug)
        if stored is not None:
            for section in stored.edition.sections:
                for story in (*section.stories, *section.more):
                    placed.setdefault(story.url, (story.title, section.sector.slug))
        ranked = sorted(clicks.items(), key=lambda item: (-item[1], item[0]))
        by_sector: Counter[str] = Counter()
        for url, n in ranked:
            by_sector[placed.get(url, ("", ""))[1]] += n
        top = tuple(
            StoryClicks(url, *placed.get(url, (url, "")), clicks=n) for url, n in ranked[:stories]
        )
        sectors = tuple((slug, n) for slug, n in by_sector.most_common() if slug)
        out.append(replace(counts, stories=top, sector_clicks=sectors))
    return out


def warnings(stats: EditionStats) -> list[str]:
    """What a sender must act on for one edition (complaints over 0.1 %, bounces over 2 %)."""
    found = []
    if stats.complaint_rate > MAX_COMPLAINT_RATE:
        found.append(
            f"edition of {stats.edition_date}: complaint rate {stats.complaint_rate:.2%} "
            f"({stats.complaints} of {stats.sent}) is over {MAX_COMPLAINT_RATE:.1%}: Gmail and "
            "Yahoo start filtering at 0.3 %; make unsubscribing easier and check who signed up"
        )
    if stats.bounce_rate > MAX_BOUNCE_RATE:
        found.append(
            f"edition of {stats.edition_date}: bounce rate {stats.bounce_rate:.1%} "
            f"({stats.bounced} of {stats.sent}) is over {MAX_BOUNCE_RATE:.0%}: clean the list "
            "(an imported list with old addresses?) before the next send"
        )
    return found
