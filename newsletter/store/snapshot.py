"""An ``Edition`` as JSON and back: the snapshot stored with each edition."""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime
from typing import Any

from newsletter.models import Edition, EditionKind, Section, Sector, Sponsor, Story, sector_fits


def edition_to_json(edition: Edition) -> str:
    """An edition as JSON, for the snapshot that is frozen once sending starts."""

    def story(s: Story) -> dict[str, Any]:
        return {
            "id": s.id,
            "title": s.title,
            "url": s.url,
            "summary": s.summary,
            "source": s.source,
            "published": s.published.isoformat(),
            "feed_url": s.feed_url,
            "sectors": list(s.sectors),
            "also_in": list(s.also_in),
            "confidence": [f.confidence for f in s.fits],
            "language": s.language,
            "storylines": list(s.storylines),
            "reports": [story(r) for r in s.reports],
            "follows": s.follows,
            "cluster": s.cluster,
        }

    return json.dumps(
        {
            "publication": edition.publication,
            "edition_date": edition.edition_date.isoformat(),
            "per_sector": edition.per_sector,
            "note": edition.note,
            "pinned": list(edition.pinned),
            "per_storyline": edition.per_storyline,
            "sponsor": dataclasses.asdict(edition.sponsor) if edition.sponsor else None,
            "brief_size": edition.brief_size,
            "notes": [list(pair) for pair in edition.notes],
            "written": [list(pair) for pair in edition.written],
            "intro": edition.intro,
            "intro_covers": list(edition.intro_covers),
            "subject": edition.subject,
            "kind": edition.kind.value,
            "sections": [
                {
                    "sector": {
                        "slug": sec.sector.slug,
                        "name": sec.sector.name,
                        "description": sec.sector.description,
                    },
                    "stories": [story(s) for s in sec.stories],
                }
                for sec in edition.sections
            ],
        },
        ensure_ascii=False,
    )


def edition_from_json(text: str) -> Edition:
    data = json.loads(text)

    def story(d: dict[str, Any]) -> Story:
        return Story(
            id=d["id"],
            title=d["title"],
            url=d["url"],
            summary=d["summary"],
            source=d["source"],
            published=datetime.fromisoformat(d["published"]),
            feed_url=d["feed_url"],
            fits=sector_fits(d["sectors"], d.get("confidence", ())),
            also_in=tuple(d["also_in"]),
            language=d.get("language", ""),
            storylines=tuple(d.get("storylines", ())),
            reports=tuple(story(r) for r in d.get("reports", ())),
            follows=d.get("follows", ""),
            cluster=d.get("cluster", ""),
        )

    return Edition(
        publication=data["publication"],
        edition_date=date.fromisoformat(data["edition_date"]),
        sections=tuple(
            Section(Sector(**sec["sector"]), tuple(story(s) for s in sec["stories"]))
            for sec in data["sections"]
        ),
        per_sector=data["per_sector"],
        note=data["note"],
        pinned=tuple(data["pinned"]),
        per_storyline=data.get("per_storyline", 0),
        sponsor=Sponsor(**data["sponsor"]) if data.get("sponsor") else None,
        brief_size=data.get("brief_size", 0),
        notes=tuple((key, text) for key, text in data.get("notes", ())),
        written=tuple((key, text) for key, text in data.get("written", ())),
        intro=data.get("intro", ""),
        intro_covers=tuple(data.get("intro_covers", ())),
        subject=data.get("subject", ""),
        kind=EditionKind(data.get("kind", EditionKind.DAILY)),
    )
