"""New developments of an event an earlier edition sent. Reported a day later in words of
its own ("X to add a second line after a strong start", after "X opens its plant"), a report
shares the event's names, so the same-event rule groups it with the event; and a group with a
report sent before counts as sent, whole. ``developments`` splits such reports off, so that
``storylines.fold`` shows them as an update of the storyline. Pure."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import timedelta

from newsletter.edition.cluster import similar_headline
from newsletter.models import Seen, Story
from newsletter.text import headline_key

# a report this long after its event's newest one sent, in words of its own, is news again
DEVELOPMENT_GAP = timedelta(hours=12)


def developments(groups: Sequence[tuple[Story, ...]], seen: Seen) -> list[tuple[Story, ...]]:
    """The groups of one event each, with the reports published ``DEVELOPMENT_GAP`` after the
    newest one an earlier edition sent, in words of their own, split off into a group of their
    own: a development, which ``fold`` shows as an update. Grouped with the event (the same
    names), it counted as sent with it and was never shown; a retelling stays with it."""
    out: list[tuple[Story, ...]] = []
    for group in groups:
        sent = [s.published for s in group if s.id in seen.ids or s.url in seen.urls]
        if not sent:
            out.append(group)
            continue
        after = max(sent) + DEVELOPMENT_GAP
        later = tuple(
            s
            for s in group
            if s.published > after and not similar_headline(headline_key(s.title), seen.headlines)
        )
        out += [tuple(s for s in group if s not in later), later] if later else [group]
    return out


def sent_before(
    merged: Sequence[Story],
    groups: Sequence[Sequence[Story]],
    seen: Seen,
    pins: Collection[str],
) -> set[str]:
    """The ids of the ``merged`` stories whose event (``groups``, in the same order) an earlier
    edition sent: a report of it sent, or a headline like one sent; not when an editor pinned
    one of its reports (a pin shows its event again)."""
    return {
        story.id
        for story, group in zip(merged, groups, strict=True)
        if _already_sent(group, seen) and not any(r.id in pins or r.url in pins for r in group)
    }


def _already_sent(group: Sequence[Story], seen: Seen) -> bool:
    if any(story.id in seen.ids or story.url in seen.urls for story in group):
        return True
    return bool(seen.headlines) and any(
        similar_headline(headline_key(story.title), seen.headlines) for story in group
    )
