"""Outcomes the ledger could not take yet, kept in a local file until it can.

A sender whose database stops taking writes (a full disk, a read-only file or server, a lost
connection) still has requests the provider accepted. Their outcomes are held in memory and
written here at once, so that neither an exit nor a SIGKILL while the database is down loses
them; the next ``send`` on this host (any worker using the same folder and host name, see
``NEWSLETTER_HOST``) records every journal of its database whose sender has ended before it
claims anything, then deletes it. A journal named for another host is left for that host: its
sender may be running.

The file is reserved at full size when the send starts (``reserve`` bytes), so a disk that
fills later cannot refuse the journal: outcomes are written over the reserved bytes, never
past them. Each line is one outcome as JSON; a line cut short by a crash is skipped (its
readers may get a second copy, as any request in flight at a crash may). Blank and NUL bytes
are the unused part.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from newsletter.models import DeliveryStatus

logger = logging.getLogger("newsletter.delivery.deliver")

SUFFIX = ".journal"
# an outcome's parts, named as the ledger's statuses are
SENT, FAILED, SKIPPED = DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.SKIPPED
BYTES_PER_READER = 320  # an outcome line's share per reader (ids, message ids, short errors)
MAX_ERROR = 200  # characters of an error kept in the journal


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one mailer call (or a batch's left-out readers) came to: delivery id → the
    provider's message id (sent) or the reason (failed, skipped), and when."""

    at: datetime
    sent: Mapping[int, str]
    failed: Mapping[int, str]
    skipped: Mapping[int, str]

    @property
    def readers(self) -> int:
        return len(self.sent) + len(self.failed) + len(self.skipped)


class Ledger(Protocol):
    def record_deliveries(
        self,
        *,
        sent: Mapping[int, str] | None = None,
        failed: Mapping[int, str] | None = None,
        skipped: Mapping[int, str] | None = None,
        now: datetime,
    ) -> None: ...


def database_key(url: str) -> str:
    """Which database a journal belongs to, without keeping its URL (or its password)."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


class Journal:
    """One sender's journal file, reserved at full size on ``open``."""

    def __init__(self, folder: Path, *, owner: str, database: str, reserve: int) -> None:
        self.path = folder / f"{_safe(owner)}{SUFFIX}"
        self.database = database
        self.reserve = reserve
        self._used = 0  # bytes of the file holding outcomes now

    def open(self) -> None:
        """Reserve the file's bytes now, while the disk has room; ``OSError`` when it has not."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                os.posix_fallocate(fd, 0, self.reserve)
            except OSError:  # a file system without it: write the bytes
                os.pwrite(fd, b"\n" * self.reserve, 0)
            os.fsync(fd)
        finally:
            os.close(fd)

    def keep(self, outcomes: Sequence[Outcome]) -> None:
        """Write exactly these outcomes over the reserved bytes (the previous ones cleared)."""
        lines = [json.dumps({"database": self.database}).encode() + b"\n"] if outcomes else []
        lines += [_line(o) for o in outcomes]
        data = b"".join(lines)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            # past the reservation only when a huge error list needs it (the disk may refuse)
            os.pwrite(fd, data + b"\n" * max(0, self._used - len(data)), 0)
            os.fsync(fd)
        finally:
            os.close(fd)
        self._used = len(data)

    def close(self) -> None:
        """Delete the file when it holds nothing (it is kept for the next run otherwise)."""
        if not self._used:
            with contextlib.suppress(OSError):
                self.path.unlink()


def _safe(owner: str) -> str:
    """A claim id (``host:pid:random``) as a file name, still readable back as one."""
    return re.sub(r"[^A-Za-z0-9._:-]", "_", owner)


def _line(outcome: Outcome) -> bytes:
    def short(values: Mapping[int, str]) -> dict[str, str]:
        return {str(k): v[:MAX_ERROR] for k, v in values.items()}

    # readers sharing a message id (a SendGrid request's) are written once per id
    by_id: dict[str, list[int]] = {}
    for delivery_id, message_id in outcome.sent.items():
        by_id.setdefault(message_id, []).append(delivery_id)
    item = {
        "at": outcome.at.isoformat(),
        SENT: [[message_id, ids] for message_id, ids in by_id.items()],
        FAILED: short(outcome.failed),
        SKIPPED: short(outcome.skipped),
    }
    return json.dumps(item, separators=(",", ":")).encode() + b"\n"


def _outcomes(path: Path, database: str) -> Iterator[Outcome] | None:
    """The outcomes of one journal, or None when it belongs to another database."""
    lines = path.read_bytes().replace(b"\0", b"").splitlines()
    found = [line for line in lines if line.strip()]
    if not found:
        return iter(())
    try:
        header = json.loads(found[0])
    except ValueError:
        header = {}
    if header.get("database") != database:
        return None
    return _parse(path, found[1:])


def _parse(path: Path, lines: Sequence[bytes]) -> Iterator[Outcome]:
    for number, line in enumerate(lines, start=2):
        try:
            item = json.loads(line)
            sent = {int(i): str(m) for m, ids in item[SENT] for i in ids}
            yield Outcome(
                at=datetime.fromisoformat(item["at"]),
                sent=sent,
                failed={int(k): str(v) for k, v in item[FAILED].items()},
                skipped={int(k): str(v) for k, v in item[SKIPPED].items()},
            )
        except (ValueError, KeyError, TypeError):
            logger.warning("%s: line %d is cut short and was left out", path, number)


def apply_journals(
    folder: Path, ledger: Ledger, *, database: str, alive: Callable[[str], bool]
) -> int:
    """Record every outcome the journals of this database hold, then delete them; how many
    readers' outcomes were recorded. Journals of other databases, and of senders still
    running (``alive`` of the owner's claim id), are left alone."""
    if not folder.is_dir():
        return 0
    applied = 0
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        if alive(path.name.removesuffix(SUFFIX)):
            continue
        try:
            outcomes = _outcomes(path, database)
        except OSError as exc:
            logger.warning("cannot read the journal %s: %s", path, exc)
            continue
        if outcomes is None:
            continue
        for outcome in outcomes:
            ledger.record_deliveries(
                sent=outcome.sent, failed=outcome.failed, skipped=outcome.skipped, now=outcome.at
            )
            applied += outcome.readers
        with contextlib.suppress(FileNotFoundError):  # another sender here applied it too
            path.unlink()
    if applied:
        logger.warning("recorded %d outcomes a send had kept in %s", applied, folder)
    return applied
