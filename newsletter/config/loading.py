"""config.yaml → a typed, validated ``Config``.

A file's every problem is reported at once (``problems``), each with the line and the key path,
e.g. ``config.yaml, line 12: schedule.timezone: unknown time zone 'Europe/Londn'; did you mean
'Europe/London'?``.
Relative paths in the file (database, outbox, templates, local feed files) resolve against the
folder of the config file, so ``newsletter --config some/where/config.yaml`` works from anywhere.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from newsletter.config import yamlfile
from newsletter.config.editorial import OverridesFile, SponsorConfig
from newsletter.config.logo import with_logo_served
from newsletter.config.problems import Problem, config_error, from_validation, validation_error
from newsletter.config.references import (
    config_references,
    overrides_references,
)
from newsletter.config.settings import ConfigFile, PublicationConfig, SectorConfig
from newsletter.config.yamlfile import where
from newsletter.errors import ConfigError
from newsletter.models import FeedSource, Overrides, Sector, Sponsor


@dataclass(frozen=True, slots=True)
class Config:
    """The validated configuration, with every relative path resolved."""

    path: Path
    file: ConfigFile
    database_url: str
    templates_dir: Path | None
    outbox_dir: Path
    overrides_dir: Path
    journal_dir: Path

    @property
    def publication(self) -> PublicationConfig:
        return self.file.publication

    def privacy_key(self) -> bytes:
        """The key of suppression hashes: from the environment, else the key file (made with
        a random key on first use, readable by its owner only)."""
        settings = self.file.privacy
        return self._key(settings.key_env, settings.key_file)

    def secret_key(self) -> bytes:
        """The key that signs the desk's session cookies (``desk.secret_key_env``), else its
        key file (``desk.secret_key_file``, made on first use, readable by its owner only)."""
        desk = self.file.desk
        return self._key(desk.secret_key_env, desk.secret_key_file)

    def _key(self, env: str, file: Path) -> bytes:
        value = os.environ.get(env, "")
        if value:
            return value.encode()
        path = _resolve(file, self.path.parent.resolve())
        if not path.is_file():
            _make_key_file(path)
        return path.read_text(encoding="utf-8").strip().encode()

    @property
    def list_id(self) -> str:
        """The List-Id header (RFC 2919): the publication's name and a stable list id."""
        delivery = self.file.delivery
        ident = delivery.list_id
        if ident is None:
            slug = re.sub(r"[^a-z0-9]+", "-", self.publication.name.lower()).strip("-") or "list"
            domain = parseaddr(delivery.from_address)[1].rpartition("@")[2] or "localhost"
            ident = f"{slug}.{domain}"
        name = self.publication.name.replace('"', "").replace("\\", "")
        return f'"{name}" <{ident}>'

    @property
    def sectors(self) -> tuple[Sector, ...]:
        return tuple(Sector(s.slug, s.name, s.description) for s in self.file.sectors)

    @property
    def sector_slugs(self) -> tuple[str, ...]:
        return tuple(s.slug for s in self.file.sectors)

    @property
    def languages(self) -> frozenset[str]:
        """Languages of the stories an edition may show."""
        own = self.publication.language.split("-")[0].lower()
        return frozenset({own, *self.file.digest.languages})

    @property
    def feeds(self) -> tuple[FeedSource, ...]:
        return tuple(
            FeedSource(
                name=f.name,
                url=f.url,
                location=_feed_location(f.url, self.path.parent),
                sector=f.sector,
                weight=f.weight,
                fetch_teasers=(
                    self.file.collect.teasers.enabled
                    if f.fetch_teasers is None
                    else f.fetch_teasers
                ),
                sample=f.sample,
            )
            for f in self.file.feeds
        )


def load_config(path: Path) -> Config:
    """Read, validate and resolve a config file, or raise ``ConfigError`` naming every problem
    in it, each with its line and key path."""
    if not path.is_file():
        found = "" if path.is_absolute() else f" in {Path.cwd()}"
        demo = Path("examples/demo/config.yaml")
        try_demo = (
            f"; or try the demo: newsletter --config {demo} preview"
            if demo.is_file()  # in the project's folder
            else "; the project's source has a demo publication in examples/demo"
        )
        raise ConfigError(
            f"{path}: config file not found{found}",
            hint="Start a publication with `newsletter init FOLDER` (a commented config.yaml "
            "and templates to edit), then use it with --config FOLDER/config.yaml or by "
            f"setting NEWSLETTER_CONFIG{try_demo}",
        )
    root, data = yamlfile.read(path, keys_twice=True)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: expected a mapping of keys (publication, sectors, feeds, ...) at the top",
            hint="See the README's configuration section for an example.",
        )
    if "sectors_file" in data:
        included = _included_sectors(path, root, data.pop("sectors_file"))
        data = {**data, "sectors": included}
    problems = [*_twice(root), *config_references(data)]
    try:
        parsed = ConfigFile.model_validate(data)
    except ValidationError as exc:
        raise config_error(path, root, [*from_validation(exc, ConfigFile), *problems]) from None
    if problems:
        raise config_error(path, root, problems)
    base = path.parent.resolve()
    parsed = with_logo_served(path, root, parsed, base)
    templates_dir = _resolve(parsed.templates, base) if parsed.templates else None
    if templates_dir is not None and not templates_dir.is_dir():
        raise ConfigError(
            f"{where(path, root, ('templates',))}: templates: folder {templates_dir} not found",
            hint="Create it (newsletter init DIR copies the default templates), "
            "or remove the key to use the built-in templates.",
        )
    return Config(
        path=path,
        file=parsed,
        database_url=_resolve_database(os.environ.get(DATABASE_ENV) or parsed.database, base),
        templates_dir=templates_dir,
        outbox_dir=_resolve(parsed.delivery.outbox.dir, base),
        overrides_dir=_resolve(parsed.digest.overrides_dir, base),
        journal_dir=_resolve(parsed.delivery.journal_dir, base),
    )


def _twice(root: yamlfile.Node | None) -> list[Problem]:
    """The keys the file gives twice, each at its first line (YAML would keep the last)."""
    return [
        Problem(
            loc,
            f"given twice (again at line {line}); only the last would count",
            "Keep one of each key given twice, with the settings of both.",
        )
        for loc, line in yamlfile.given_twice(root)
    ]


class _SectorsFile(BaseModel):
    model_config = ConfigDict(extra="ignore")
    sectors: list[SectorConfig] = Field(min_length=1)


def _included_sectors(
    path: Path, root: yamlfile.Node | None, value: object
) -> list[dict[str, Any]]:
    """``sectors_file: other.yaml`` takes the ``sectors`` list of another config file."""
    if not isinstance(value, str) or not value:
        raise ConfigError(
            f"{where(path, root, ('sectors_file',))}: sectors_file: expected a file path",
            hint="Give the path of a YAML file with a `sectors:` list, relative to this file.",
        )
    other = _resolve(Path(value), path.parent)
    if not other.is_file():
        raise ConfigError(
            f"{where(path, root, ('sectors_file',))}: sectors_file: file {other} not found",
            hint="Give the path of a YAML file with a `sectors:` list, relative to this file.",
        )
    other_root, other_data = yamlfile.read(other)
    try:
        parsed = _SectorsFile.model_validate(other_data or {})
    except ValidationError as exc:
        raise validation_error(other, other_root, exc, model=_SectorsFile) from None
    return [sector.model_dump() for sector in parsed.sectors]


def load_overrides(config: Config, edition_date: date) -> tuple[Overrides, Path | None]:
    """The editor's overrides for a day, and the file they came from (None when there is none)."""
    path = config.overrides_dir / f"{edition_date.isoformat()}.yaml"
    if not path.is_file():
        return Overrides(), None
    root, data = yamlfile.read(path)
    data = data or {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: expected keys note, pin, drop, drop_feeds, move, notes, subject, intro",
            hint="See the README's section on editor overrides.",
        )
    problems = overrides_references(data, config.sector_slugs)
    try:
        parsed = OverridesFile.model_validate(data)
    except ValidationError as exc:
        found = [*from_validation(exc, OverridesFile), *problems]
        raise config_error(path, root, found) from None
    if problems:
        raise config_error(path, root, problems)
    return (
        Overrides(
            parsed.note.strip(),
            tuple(parsed.pin),
            tuple(parsed.drop),
            tuple(parsed.drop_feeds),
            tuple(parsed.move.items()),
            sponsor=sponsor_of(parsed.sponsor, edition_date) if parsed.sponsor else None,
            drop_sponsor=parsed.sponsor is False,
            notes=tuple((key, text.strip()) for key, text in parsed.notes.items() if text.strip()),
            subject=" ".join(parsed.subject.split()),
            intro=parsed.intro.strip(),
        ),
        path,
    )


def sponsor_of(settings: SponsorConfig, edition_date: date) -> Sponsor:
    """The sponsor slot as frozen with an edition: its link with the UTM parameters set
    (``{date}`` in a value is the edition's date), replacing the link's own of the same name."""
    url = settings.cta_url
    if settings.utm:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        query = [(k, v) for k, v in query if k not in settings.utm]
        query += [
            (k, v.replace("{date}", edition_date.isoformat())) for k, v in settings.utm.items()
        ]
        url = urlunsplit(parts._replace(query=urlencode(query)))
    image = settings.image
    return Sponsor(
        title=settings.title,
        text=settings.text,
        cta_label=settings.cta_label,
        url=url,
        image_url=image.url if image else "",
        image_width=image.width if image else 0,
        image_alt=image.alt if image else "",
        after=settings.after or "",
    )


def day_sponsor(
    config: Config, overrides: Overrides, edition_date: date, present: Collection[str]
) -> Sponsor | None:
    """The sponsor of a day's edition: the overrides file's, none if it drops it, else the
    configured one. Its place is the sector it names, or when that sector has no stories that
    day (``present`` are the ones that have), the nearest one before it that has."""
    if overrides.drop_sponsor:
        return None
    configured = config.file.sponsor
    sponsor = overrides.sponsor or (sponsor_of(configured, edition_date) if configured else None)
    if sponsor is None or not sponsor.after or sponsor.after not in config.sector_slugs:
        return sponsor
    slugs = config.sector_slugs
    before = [s for s in slugs[: slugs.index(sponsor.after) + 1] if s in present]
    return dataclasses.replace(sponsor, after=before[-1] if before else "")


def _resolve(value: Path, base: Path) -> Path:
    value = value.expanduser()
    return value if value.is_absolute() else base / value


# overrides the `database` key: a deployment's URL; a PostgreSQL password comes from libpq's
# own PGPASSWORD (or ~/.pgpass), never from the file
DATABASE_ENV = "NEWSLETTER_DATABASE_URL"


def _resolve_database(url: str, base: Path) -> str:
    """Make a relative SQLite path absolute against the config folder; other URLs pass through."""
    match = re.match(r"^(sqlite(?:\+\w+)?:///)(.*)$", url)
    if not match or not match.group(2) or match.group(2).startswith(("/", ":memory:")):
        return url
    prefix, rest = match.groups()
    return prefix + str(base / rest)


def _feed_location(url: str, base: Path) -> str:
    parts = urlsplit(url)
    if parts.scheme.lower() in {"http", "https"}:
        return parts.scheme.lower() + url[len(parts.scheme) :]  # "HTTP://" is http too
    if parts.scheme.lower() == "file":
        return parts.path
    return str(_resolve(Path(url), base.resolve()))


def _make_key_file(path: Path) -> None:
    """Write a random key in full under a name of this process's own, then link it into place:
    of several processes started together on a fresh folder, the first link wins and every
    other one reads that file, never a half-written one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32) + "\n")
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):  # another process made it first: theirs
            os.link(draft, path)
    finally:
        draft.unlink(missing_ok=True)
