"""The rendered variants of a frozen edition, kept so that each is rendered once, whichever
process sends which bucket: the scheduler's passes, `send --due` runs, several senders."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Collection, Mapping, Sequence

from sqlalchemy import Column, ForeignKey, Integer, String, Table, Text, insert, select
from sqlalchemy.exc import IntegrityError

from newsletter.models import RenderedEmail
from newsletter.store.base import Repository
from newsletter.store.tables import metadata

# one row per (frozen edition, choice of sectors): the variant as it was rendered
rendered_variants = Table(
    "rendered_variants",
    metadata,
    Column("edition_id", Integer, ForeignKey("editions.id", ondelete="CASCADE"), primary_key=True),
    Column("choice", String(400), primary_key=True),  # JSON list of the chosen slugs
    Column("email", Text, nullable=False),  # the RenderedEmail as JSON
)


class VariantStore(Repository):
    """Variants by edition and choice of sectors; a frozen edition's never change."""

    def stored_variants(
        self, edition_id: int, choices: Collection[tuple[str, ...]] | None = None
    ) -> dict[tuple[str, ...], RenderedEmail]:
        """The edition's kept variants (of these choices only, when given), read one row at a
        time: a daily edition's 511 variants are about 30 MB of JSON, and a send needs each
        as a parsed email, not also as the rows it came from."""
        wanted = None if choices is None else [json.dumps(list(c)) for c in choices]
        found: dict[tuple[str, ...], RenderedEmail] = {}
        if wanted == []:
            return found
        query = select(rendered_variants.c.choice, rendered_variants.c.email).where(
            rendered_variants.c.edition_id == edition_id
        )
        parts = (
            [None] if wanted is None else [wanted[i : i + 500] for i in range(0, len(wanted), 500)]
        )
        with self.engine.connect() as conn:
            for part in parts:
                part_query = (
                    query if part is None else query.where(rendered_variants.c.choice.in_(part))
                )
                for choice, text in conn.execution_options(yield_per=20).execute(part_query):
                    found[tuple(json.loads(choice))] = _email(text)
        return found

    def keep_variants(
        self, edition_id: int, emails: Mapping[tuple[str, ...], RenderedEmail]
    ) -> None:
        """Keep these variants (one another sender kept first stays as it is)."""
        for choice, email in emails.items():
            row = {"edition_id": edition_id, "choice": json.dumps(list(choice))}
            with contextlib.suppress(IntegrityError), self.engine.begin() as conn:
                conn.execute(insert(rendered_variants).values(**row, email=_text(email)))


def _text(email: RenderedEmail) -> str:
    return json.dumps(
        {
            "subject": email.subject,
            "html": email.html,
            "text": email.text,
            "preheader": email.preheader,
            "trimmed": email.trimmed,
            "shown": [list(s) for s in email.shown],
            "markers": email.markers,
        },
        ensure_ascii=False,
    )


def _email(text: str) -> RenderedEmail:
    data = json.loads(text)
    shown: Sequence[tuple[str, int, int]] = [(s[0], s[1], s[2]) for s in data["shown"]]
    return RenderedEmail(
        subject=data["subject"],
        html=data["html"],
        text=data["text"],
        preheader=data["preheader"],
        trimmed=data["trimmed"],
        shown=tuple(shown),
        markers=data["markers"],
    )
