"""Rendering benchmark: 100,000 readers spread over 50 combinations of sectors.

    python benchmarks/render_bench.py [--readers 100000] [--combinations 50]

Builds a full nine-sector edition (5 stories per sector with 300-character teasers, 5 "more"
headlines each), draws each reader's choice from the given number of distinct sector
combinations, renders each combination once (Jinja2 → MJML → MRML → minified HTML, plus the
text part) and fills in every reader's own links and greeting. Prints the wall time of each
stage and the largest HTML.
"""

from __future__ import annotations

import argparse
import itertools
import platform
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from newsletter import render
from newsletter.digest import build_edition, layout
from newsletter.models import Sector, Story

SLUGS = [
    ("evs-battery", "EVs & Battery Technology"),
    ("oil-gas", "Oil & Gas"),
    ("rare-earths-commodities", "Rare Earths & Commodities"),
    ("mining-metals", "Mining & Metals"),
    ("esg-renewables", "ESG & Renewable Energy"),
    ("ai-semiconductors", "AI & Semiconductors"),
    ("aerospace-defense", "Aerospace & Defense"),
    ("sanctions-regulation", "Sanctions & Regulation"),
    ("business-politics", "Business & Politics"),
]


def full_edition(now: datetime):  # type: ignore[no-untyped-def]
    sectors = [Sector(slug, name) for slug, name in SLUGS]
    teaser = ("A teaser sentence of the kind an industry outlet writes for its readers. " * 5)[:300]
    stories = [
        Story(
            id=f"{i}-{j}",
            title=f"Headline about development {1000 + 100 * i + j} that our readers follow",
            url=f"https://outlet{j}.example.com/2026/11/25/story-{i}-{j}",
            summary=teaser,
            source=f"Outlet {j}",
            published=now - timedelta(minutes=7 * j + i),
            feed_url=f"feed-{j}",
            sectors=(slug,),
        )
        for i, (slug, _) in enumerate(SLUGS)
        for j in range(10)
    ]
    return build_edition(
        stories, sectors, publication="Top Insights Today", edition_date=now.date(), now=now
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=100_000)
    parser.add_argument("--combinations", type=int, default=50)
    args = parser.parse_args()

    rng = random.Random(7)
    slugs = [slug for slug, _ in SLUGS]
    combos: list[tuple[str, ...]] = [()]  # "all sectors" is one of them
    candidates = [c for n in (1, 2, 3, 4) for c in itertools.combinations(slugs, n)]
    rng.shuffle(candidates)
    combos += candidates[: args.combinations - 1]
    readers = [
        (f"reader{n}@example.com", combos[n % len(combos)], f"token{n:06d}")
        for n in range(args.readers)
    ]

    now = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
    edition = full_edition(now)
    env = render.make_environment()

    started = time.perf_counter()
    variants = {
        combo: render.Personalizer(render.render_email(env, edition, layout(edition, combo)))
        for combo in combos
    }
    compiled = time.perf_counter() - started

    started = time.perf_counter()
    total_bytes = 0
    for _address, combo, token in readers:
        email = variants[combo].fill(
            {
                "unsubscribe_url": f"https://pub.example.com/unsubscribe/{token}",
                "preferences_url": f"https://pub.example.com/preferences/{token}",
                "greeting": "Good morning.",
            }
        )
        total_bytes += len(email.html) + len(email.text)
    filled = time.perf_counter() - started

    largest = max(len(v.email.html.encode()) for v in variants.values())
    print(f"machine: {platform.machine()}, Python {platform.python_version()}")
    print(
        f"workload: {args.readers:,} readers over {len(combos)} sector combinations; "
        "full edition of 9 sectors x 5 stories + 5 more headlines each"
    )
    print(f"render {len(combos)} variants once: {compiled:.2f} s")
    print(f"fill in {args.readers:,} readers: {filled:.2f} s ({total_bytes / 1e9:.1f} GB of email)")
    print(f"total: {compiled + filled:.2f} s; largest HTML {largest / 1024:.1f} KB")


if __name__ == "__main__":
    main()
