"""The default mailer: one ``.eml`` file per reader, in a folder per edition."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import threading
from pathlib import Path

from newsletter.config.settings import OutboxConfig
from newsletter.delivery.mailers.message import personal_messages, rehearsed
from newsletter.errors import MailerSetupError
from newsletter.models import Batch, BatchResult

_SETTINGS = OutboxConfig()  # the one source of the defaults below: ``delivery.outbox``


class OutboxMailer:
    name = "outbox"
    max_batch = 1000

    def __init__(
        self,
        folder: Path,
        *,
        from_address: str,
        parallel: int = _SETTINGS.parallel,
        list_id: str = "",
        tag_key: bytes = b"",
    ) -> None:
        self.folder = folder
        self.from_address, self.list_id = from_address, list_id
        self.tag_key = tag_key  # signs the reader a bounce names (``message.reader_tag``)
        self.parallel = parallel
        self._stopping = threading.Event()

    def another(self) -> OutboxMailer:
        """The mailer for another batch in flight: this one (each reader has their own file)."""
        return self

    def send_batch(self, batch: Batch) -> BatchResult:
        if batch.dry_run:  # writes nothing
            return rehearsed(batch, self.from_address, self.list_id)
        # an edition's copies go in its own folder; confirmations and test copies in "other"
        target = self.folder / (batch.edition_date.isoformat() if batch.edition_id else "other")
        sent: dict[int, str] = {}
        failed: dict[int, str] = {}
        order = [r.delivery_id for r in batch.recipients]
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            reason = f"the outbox folder {target} cannot be made: {exc.strerror or exc}"
            if exc.errno in (errno.ENOTDIR, errno.EEXIST):  # a file where a folder must be
                raise MailerSetupError(
                    reason,
                    hint="Move that file away, or set delivery.outbox.dir to a folder.",
                ) from None
            return _rest(order, sent, failed, reason=reason)
        messages = personal_messages(
            batch, self.from_address, failed, self.list_id, tag_key=self.tag_key
        )
        for recipient, message in messages:
            if self._stopping.is_set():
                return _rest(order, sent, failed, reason="asked to stop", stopped=True)
            name = f"{recipient.subscriber_id:08d}"
            if not batch.edition_id:  # several may go to one person: keep each
                name += "-" + hashlib.sha256(str(message["Message-ID"]).encode()).hexdigest()[:10]
            path = target / f"{name}.eml"
            partial = path.with_suffix(".eml.part")
            try:
                partial.write_bytes(bytes(message))
                partial.replace(path)  # a reader's file is complete or absent
            except OSError as exc:
                with contextlib.suppress(OSError):  # a read-only file system refuses it too
                    partial.unlink(missing_ok=True)
                if exc.errno in _FOLDER_UNUSABLE:  # no reader can be written: stop here
                    reason = f"the outbox folder {target} cannot be written: {exc.strerror}"
                    return _rest(order, sent, failed, reason=reason)
                failed[recipient.delivery_id] = f"cannot write {path}: {exc.strerror}"
                continue
            sent[recipient.delivery_id] = str(message["Message-ID"])
        return BatchResult(sent=sent, failed=failed)

    def stop(self) -> None:
        self._stopping.set()

    def close(self) -> None:
        pass


# a full disk, a read-only or vanished folder: the rest of the batch goes back to the queue
_FOLDER_UNUSABLE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EACCES})


def _rest(
    order: list[int],
    sent: dict[int, str],
    failed: dict[int, str],
    *,
    reason: str,
    stopped: bool = False,
) -> BatchResult:
    """What a batch cut short did: the readers not tried come back unsent."""
    done = set(sent) | set(failed)
    unsent = tuple(d for d in order if d not in done)
    return BatchResult(sent, failed, unsent=unsent, stop_reason=reason, stopped=stopped)
