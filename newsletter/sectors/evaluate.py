"""Score a sector classifier on labelled stories: precision, recall, F1, confusions. Pure.

A labelled story has a headline, a teaser, a link, a ``primary`` sector slug (or ``none`` for a
story the newsletter should leave out) and optional ``secondary`` slugs. The classifier's first
sector is scored against the primary label, as the reader sees it: the top of a section.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from newsletter.config.suggest import did_you_mean
from newsletter.errors import InputError

NONE = "none"


@dataclass(frozen=True, slots=True)
class Labelled:
    title: str
    summary: str
    primary: str
    secondary: tuple[str, ...] = ()
    url: str = ""
    id: str = ""


@dataclass(frozen=True, slots=True)
class SectorScore:
    slug: str
    precision: float
    recall: float
    f1: float
    support: int  # labelled items whose primary is this sector
    given: int = 0  # items the classifier put first in this sector

    @property
    def scored(self) -> bool:
        """Whether the file or the classifier names the sector at all (else it has no score)."""
        return bool(self.support or self.given)


@dataclass(frozen=True, slots=True)
class Miss:
    item: Labelled
    predicted: tuple[str, ...]  # the classifier's sectors, best first


@dataclass(frozen=True, slots=True)
class RulesReport:
    items: int
    sector_items: int
    none_items: int
    sectors: tuple[SectorScore, ...]
    macro_f1: float  # over the sectors ``scored``
    top1: float  # first sector == primary, over sector items
    lenient: float  # first sector is the primary or a secondary
    none_left_out: float  # off-topic items given no sector
    wrongly_left_out: float  # sector items given no sector
    confusions: tuple[tuple[str, str, int], ...]  # (labelled, predicted, count), most first
    misses: tuple[Miss, ...]


def read_labelled(path: Path, slugs: Sequence[str]) -> list[Labelled]:
    """Read a JSONL file of labelled stories, or raise ``InputError`` naming every bad line
    (the first ``SHOWN``) and what is wrong with it."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InputError(
            f"{path}: file not found",
            hint="Give a JSON Lines file: one {title, summary, primary, secondary} per line.",
        ) from None
    known = {*slugs, NONE}
    items, problems = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            items.append(_labelled(line, number, known))
        except ValueError as exc:
            problems.append(f"line {number}: {exc}")
    if problems:
        more = f"\n  ... and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
        listed = "\n  ".join(problems[:SHOWN])
        raise InputError(
            f"{path}, {problems[0]}"
            if len(problems) == 1
            else f"{path}: {len(problems)} bad lines\n  {listed}{more}",
            hint='Each line is a JSON object such as {"title": "...", "summary": "...", '
            f'"primary": "oil-gas", "secondary": []}}; the sectors: {", ".join(sorted(known))}.',
        )
    return items


SHOWN = 20  # bad lines named at most


def _labelled(line: str, number: int, known: set[str]) -> Labelled:
    """One line's labelled story, or ``ValueError`` saying what is wrong with it."""
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    for key in ("title", "primary"):
        if key not in data:
            raise ValueError(f"the key {key!r} is missing")
        if not isinstance(data[key], str):
            raise ValueError(f"{key!r} must be text, got {data[key]!r}")
    secondary = data.get("secondary") or []
    if not isinstance(secondary, list) or not all(isinstance(s, str) for s in secondary):
        raise ValueError(f"'secondary' must be a list of sector slugs, got {secondary!r}")
    for slug in (data["primary"], *secondary):
        if slug not in known:
            raise ValueError(f"unknown sector {slug!r}{did_you_mean(slug, known)}")
    return Labelled(
        title=data["title"],
        summary=str(data.get("summary") or ""),
        primary=data["primary"],
        secondary=tuple(secondary),
        url=str(data.get("link") or data.get("url") or ""),
        id=str(data.get("id") or number),
    )


def score(
    items: Iterable[Labelled],
    slugs: Sequence[str],
    predict: Callable[[Labelled], tuple[str, ...]],
) -> RulesReport:
    """Score ``predict`` (a story's sectors, best first) against the labels."""
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    confusions: Counter[tuple[str, str]] = Counter()
    misses: list[Miss] = []
    total = sector_items = correct = lenient = dropped = none_items = none_out = 0
    for item in items:
        total += 1
        ranked = predict(item)
        top = ranked[0] if ranked else NONE
        if item.primary == NONE:
            none_items += 1
            none_out += not ranked
        else:
            sector_items += 1
            correct += top == item.primary
            lenient += top in {item.primary, *item.secondary}
            dropped += not ranked
        if top == item.primary:
            if top != NONE:
                tp[top] += 1
            continue
        if top != NONE:
            fp[top] += 1
        if item.primary != NONE:
            fn[item.primary] += 1
        confusions[(item.primary, top)] += 1
        misses.append(Miss(item, ranked))
    sectors = []
    for slug in slugs:
        p = tp[slug] / (tp[slug] + fp[slug]) if tp[slug] + fp[slug] else 0.0
        r = tp[slug] / (tp[slug] + fn[slug]) if tp[slug] + fn[slug] else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        sectors.append(SectorScore(slug, p, r, f1, tp[slug] + fn[slug], tp[slug] + fp[slug]))
    scored = [s for s in sectors if s.scored]
    return RulesReport(
        items=total,
        sector_items=sector_items,
        none_items=none_items,
        sectors=tuple(sectors),
        macro_f1=sum(s.f1 for s in scored) / len(scored) if scored else 0.0,
        top1=correct / sector_items if sector_items else 0.0,
        lenient=lenient / sector_items if sector_items else 0.0,
        none_left_out=none_out / none_items if none_items else 1.0,
        wrongly_left_out=dropped / sector_items if sector_items else 0.0,
        confusions=tuple(
            (a, b, n) for (a, b), n in sorted(confusions.items(), key=lambda kv: (-kv[1], kv[0]))
        ),
        misses=tuple(misses),
    )
