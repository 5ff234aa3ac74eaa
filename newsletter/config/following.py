"""The sections of config.yaml about what readers choose beyond their sectors: the weekly
edition of weekly readers (``weekly``) and the names or terms a reader follows
(``watchlist``). ``settings.ConfigFile`` holds them; the delivery hours readers may pick are
``schedule.delivery_hours``."""

from __future__ import annotations

from pydantic import Field, field_validator

from newsletter.config.values import Strict


class WeeklyConfig(Strict):
    """The weekly edition: the week's biggest storylines in the reader's sectors, for readers
    who chose one email a week (docs/readers.md)."""

    per_sector: int = Field(5, ge=1, le=50)  # storylines per section
    brief: int = Field(5, ge=1, le=5)  # the week's biggest storylines, opening the email
    days: int = Field(7, ge=2, le=14)  # the window it covers, up to its cut-off
    # Jinja, over the same names as email.subject; the week's top storyline first
    subject: str = "The week: {{ headline }}"


class WatchlistConfig(Strict):
    """What a reader's watchlist matches: each term on whole words, case-insensitively, and
    the aliases known for it here (a term of the list, or any of its aliases, followed)."""

    # name → other names it goes by, e.g. {"TSMC": ["Taiwan Semiconductor"]}
    aliases: dict[str, list[str]] = {}
    max_stories: int = Field(5, ge=1, le=20)  # shown under "Your watchlist" at most

    @field_validator("aliases")
    @classmethod
    def _no_blank(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, others in value.items():
            if not name.strip() or any(not o.strip() for o in others):
                raise ValueError(f"an empty name in the aliases of {name!r}")
        return value
