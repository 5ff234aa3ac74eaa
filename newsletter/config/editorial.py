"""The editor's day: the sponsor slot and ``overrides/YYYY-MM-DD.yaml``, the editor's choices for
one day's edition, as pydantic models (``settings`` names them in ``ConfigFile``). The desk
(``config.desk``) and a person with a text editor write the same file; ``approved`` is the
desk's "Approve" (``docs/desk.md``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from newsletter.config.values import ImageUrl, Strict


class SponsorImage(Strict):
    url: ImageUrl  # https only, as the logo's
    width: int = Field(552, ge=16, le=600)  # pixels, as shown
    alt: str = Field(min_length=1, max_length=200)


class SponsorConfig(Strict):
    """The sponsor slot, marked "Sponsored", in the email (HTML and text), the archive and the
    preview; a day's overrides file may change it (`sponsor: {...}`) or drop it (`sponsor:
    false`)."""

    title: str = Field(min_length=1, max_length=120)
    text: str = Field(min_length=1, max_length=600)
    cta_label: str = Field("Learn more", min_length=1, max_length=60)
    cta_url: str = Field(pattern=r"^https?://")
    image: SponsorImage | None = None
    # the sector after whose section it goes (a reader without that sector sees it after the
    # last of their sections that comes before it); none: right after the top story
    after: str | None = None
    # UTM parameters added to the link, e.g. {utm_source: newsletter, utm_medium: email,
    # utm_campaign: "edition-{date}"}; {date} is the edition's date
    utm: dict[str, str] = {}


class Approval(Strict):
    """Who approved the day's edition on the desk, when, and the version of the rest of the
    file they approved: any later change to the file withdraws it."""

    by: str = Field(min_length=1, max_length=320)
    at: datetime
    version: str = Field(min_length=1, max_length=64)


class OverridesFile(Strict):
    """``overrides/YYYY-MM-DD.yaml``: the editor's choices for one day's edition."""

    note: str = Field("", max_length=600)  # shown above the sections
    pin: list[str] = []  # story ids (as `stories --json` shows them) or links, top first
    drop: list[str] = []  # story ids or links to leave out
    drop_feeds: list[str] = []  # feed names or URLs to leave out for the day
    # story id or link → the sector it belongs in; kept as a labelled example for the model
    move: dict[str, str] = {}
    # story id or link → the editor's "why it matters", shown under the story in the brief
    notes: dict[str, Annotated[str, Field(max_length=300)]] = {}
    # the day's sponsor instead of the configured one; false: no sponsor that day
    sponsor: SponsorConfig | Literal[False] | None = None
    subject: str = Field("", max_length=200)  # the email's subject instead of the computed one
    intro: str = Field("", max_length=600)  # under the greeting, instead of the writer's intro
    approved: Approval | None = None  # the desk's "Approve" (``schedule.require_approval``)
