"""The desk's changes to a day's overrides file (``overrides/YYYY-MM-DD.yaml``), two editors at
once, and the day's approval.

The file stays the one source of truth: the desk reads it, applies one change and writes it
back (atomically, under a lock on the folder), so an editor with a text editor and an editor on
the desk change the same thing. Each change names the part it touches (a story's pin, drop,
move or note; the subject, the intro, the note) with the value the editor saw there, and the
version of the file they saw (``version_of``: a hash of its bytes):

- on that version, it is applied;
- on a newer one whose part still holds the value the editor saw, it is applied on top: the
  other change is kept, and the outcome says so (``ON_TOP``);
- on a newer one whose part changed meanwhile, it is refused and the current value is given
  back (``REFUSED``): never is one editor's change silently lost to another's.

``approve_day`` records who approved the day's edition and when, with the version of the rest
of the file; any later change to the file (by the desk or by hand) withdraws it
(``approval_of`` then answers None).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from newsletter.config import yamlfile
from newsletter.config.editorial import Approval, OverridesFile
from newsletter.config.loading import Config, load_overrides
from newsletter.config.problems import from_validation
from newsletter.config.references import overrides_references, sector_reference
from newsletter.errors import ConfigError

NO_FILE = "none"  # the version of a day without an overrides file


class Part(StrEnum):
    """What one change touches: a story's pin, drop, move or note, or the day's subject,
    intro or note (each the overrides file's key)."""

    PIN = "pin"
    DROP = "drop"
    MOVE = "move"
    WHY = "notes"  # a story's "why it matters"
    SUBJECT = "subject"
    INTRO = "intro"
    NOTE = "note"

    @property
    def of_story(self) -> bool:
        return self in {Part.PIN, Part.DROP, Part.MOVE, Part.WHY}


class Outcome(StrEnum):
    APPLIED = "applied"  # on the version the editor saw
    ON_TOP = "on-top"  # the file had changed elsewhere meanwhile: both changes kept
    REFUSED = "refused"  # the file had changed this very part: the current value given back
    UNCHANGED = "unchanged"  # it already was so (another editor made the same change)


@dataclass(frozen=True, slots=True)
class Change:
    """One editor's change: ``value`` is "1" or "" for a pin or a drop, a sector slug or ""
    for a move, text for the rest ("" removes it); ``was`` is the value they saw."""

    part: Part
    value: str
    was: str
    story: str = ""  # the story's id, for a part of a story
    link: str = ""  # and its link, which a hand-written file may name it by


@dataclass(frozen=True, slots=True)
class Edited:
    outcome: Outcome
    version: str  # the file's version now
    current: str  # the part's value now: the change's, or the one that refused it
    path: Path


def day_path(config: Config, day: date) -> Path:
    return config.overrides_dir / f"{day.isoformat()}.yaml"


def version_of(path: Path) -> str:
    """The version of an overrides file: a hash of its bytes (``NO_FILE`` when there is none)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except FileNotFoundError:
        return NO_FILE


def value_of(data: dict[str, Any], part: Part, keys: tuple[str, ...] = ()) -> str:
    """The value of one part in an overrides file's data, as a change gives it."""
    if part in {Part.PIN, Part.DROP}:
        return "1" if any(k in (data.get(part.value) or []) for k in keys) else ""
    if part.of_story:
        found = data.get(part.value) or {}
        return next((str(found[k]) for k in keys if k in found), "")
    return str(data.get(part.value) or "")


def with_change(data: dict[str, Any], change: Change) -> dict[str, Any]:
    """The file's data with one change made (and no approval: a change withdraws it)."""
    out = {k: v for k, v in data.items() if k != "approved"}
    keys = _keys(change)
    part, value = change.part, change.value
    if part in {Part.PIN, Part.DROP}:
        listed = [k for k in out.get(part.value) or [] if k not in keys]
        other = Part.DROP if part is Part.PIN else Part.PIN
        if value:  # a pinned story is not dropped, and a dropped one not pinned
            listed.append(change.story)
            if out.get(other.value):
                out[other.value] = [k for k in out[other.value] if k not in keys]
        out[part.value] = listed
    elif part.of_story:
        mapping = {k: v for k, v in (out.get(part.value) or {}).items() if k not in keys}
        if value:
            mapping[change.story] = value
        out[part.value] = mapping
    else:
        out[part.value] = value
    return {k: v for k, v in out.items() if v not in ("", [], {}, None)}


def edit_day(config: Config, day: date, change: Change, *, seen: str) -> Edited:
    """Apply one change to the day's overrides file, seen by its editor at version ``seen``
    (see the module's docstring for what happens on a newer one)."""
    _check(config, change)
    path = day_path(config, day)
    with _locked(config):
        load_overrides(config, day)  # a broken file is reported, never overwritten
        version, data = read_day(path)
        keys = _keys(change)
        current = value_of(data, change.part, keys)
        if current == _normal(change):
            return Edited(Outcome.UNCHANGED, version, current, path)
        if version != seen and current != change.was:
            return Edited(Outcome.REFUSED, version, current, path)
        changed = with_change(data, change)
        _valid(config, path, changed)
        _write(path, changed)
        outcome = Outcome.APPLIED if version == seen else Outcome.ON_TOP
        return Edited(outcome, version_of(path), value_of(changed, change.part, keys), path)


def save_move(config: Config, edition_date: date, story: str, slug: str) -> Path:
    """The preview's move of a story (id or link) to a sector, made as the desk makes its
    changes (the whole file written under another name, one change at a time); returns the
    file."""
    path = day_path(config, edition_date)
    for _ in range(3):  # another change to this very move between the read and the write
        version, data = read_day(path)
        change = Change(Part.MOVE, slug, value_of(data, Part.MOVE, (story,)), story=story)
        if edit_day(config, edition_date, change, seen=version).outcome is not Outcome.REFUSED:
            break
    return path


def approve_day(config: Config, day: date, *, by: str, at: datetime, seen: str) -> Edited:
    """Record the day's approval (who, when, the version of the rest of the file), unless the
    file changed since its editor saw it (``seen``): they approve what they saw, or nothing."""
    path = day_path(config, day)
    with _locked(config):
        load_overrides(config, day)
        version, data = read_day(path)
        if version != seen:
            return Edited(Outcome.REFUSED, version, "", path)
        data.pop("approved", None)
        approval = {"by": by, "at": at.isoformat(), "version": content_version(data)}
        _write(path, {**data, "approved": approval})
        return Edited(Outcome.APPLIED, version_of(path), by, path)


def withdraw_day(config: Config, day: date) -> Edited:
    """Take the day's approval back (UNCHANGED when there was none)."""
    path = day_path(config, day)
    with _locked(config):
        load_overrides(config, day)
        version, data = read_day(path)
        if data.pop("approved", None) is None:
            return Edited(Outcome.UNCHANGED, version, "", path)
        _write(path, data)
        return Edited(Outcome.APPLIED, version_of(path), "", path)


def approval_of(config: Config, day: date) -> Approval | None:
    """The day's approval while it stands: None when there is none, or the file changed after."""
    path = day_path(config, day)
    data = read_day(path)[1]
    raw = data.pop("approved", None)
    if not raw:
        return None
    try:
        approval = Approval.model_validate(raw)
    except ValidationError:
        return None
    return approval if approval.version == content_version(data) else None


def content_version(data: dict[str, Any]) -> str:
    """A hash of an overrides file's choices (its data without the approval)."""
    choices = {k: v for k, v in data.items() if k != "approved"}
    text = json.dumps(choices, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _keys(change: Change) -> tuple[str, ...]:
    return tuple(k for k in (change.story, change.link) if k)


def _normal(change: Change) -> str:
    if change.part in {Part.PIN, Part.DROP}:
        return "1" if change.value else ""
    return change.value


def _check(config: Config, change: Change) -> None:
    if change.part.of_story and not change.story:
        raise ConfigError(f"a change to a story's {change.part.value} names no story")
    if change.part is Part.MOVE and change.value:
        for problem in sector_reference(("move", change.story), change.value, config.sector_slugs):
            raise ConfigError(problem.message, hint=problem.hint)


def read_day(path: Path) -> tuple[str, dict[str, Any]]:
    """An overrides file's version and its data, from one read of its bytes; ``ConfigError``
    naming the line when it is not YAML."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return NO_FILE, {}
    data = yamlfile.parse_text(path, raw.decode("utf-8", "replace"))[1] if raw.strip() else None
    return hashlib.sha256(raw).hexdigest()[:16], dict(data) if isinstance(data, dict) else {}


# the parts of the day's file as the desk names them
_LABELS = {
    "notes": "Why it matters",
    "note": "The note to readers",
    "subject": "The subject",
    "intro": "The intro",
    "pin": "A pin",
    "drop": "A drop",
    "move": "A move",
}


def _valid(config: Config, path: Path, data: dict[str, Any]) -> None:
    """The changed file must load as the hand-written one does (lengths, sector slugs); the
    first problem in the desk's words, the file named in the hint."""
    problems = overrides_references(data, config.sector_slugs)
    try:
        OverridesFile.model_validate(data)
    except ValidationError as exc:
        first = from_validation(exc, OverridesFile)[0]
        key = str(first.loc[0]) if first.loc else ""
        label = _LABELS.get(key) or f"{yamlfile.dotted(first.loc)} in the day's file"
        raise ConfigError(f"{label}: {first.message}", hint=f"The day's file: {path}") from None
    for problem in problems:
        raise ConfigError(problem.message, hint=problem.hint)


def _write(path: Path, data: dict[str, Any]) -> None:
    """Write the file whole under another name, then put it in place: a reader (the send, a
    preview, an editor's text editor) sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        yamlfile.write(draft, data)
        with draft.open("rb") as written:
            os.fsync(written.fileno())
        draft.replace(path)
    finally:
        draft.unlink(missing_ok=True)


@contextlib.contextmanager
def _locked(config: Config) -> Iterator[None]:
    """One change at a time to a folder of overrides files, across threads and processes."""
    folder = config.overrides_dir
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / ".desk.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
