"""A CSV file read one physical line at a time, for files where no field holds a line break.

``read_lines`` takes a binary file and gives its lines as an editor numbers them (``\\n``,
``\\r\\n`` and a lone ``\\r`` each end one), each with the byte offset of its first byte in the
file and without its line end, still as bytes: the caller decodes each line on its own, so one
bad byte costs one line. The file is read ``BLOCK`` bytes at a time and no more than ``limit``
bytes of a line are ever kept: a longer line comes out once, as ``None``, however long it is,
so memory stays flat for any file. ``cells`` splits one line as the ``csv`` module's default
dialect does, or says the line leaves a quote open; a row can no longer swallow the lines after
it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import BinaryIO

BLOCK = 1 << 20  # bytes read at a time

# (line number from 1, offset of its first byte in the file, its bytes or None when too long);
# a plain tuple, as a million of them are made per million rows
Line = tuple[int, int, bytes | None]


def read_lines(raw: BinaryIO, *, limit: int, block: int = BLOCK) -> Iterator[Line]:
    """The file's lines, numbered, with their offsets; one longer than ``limit`` bytes as None."""
    number = 0
    at = 0  # the file offset of the next byte
    start = 0  # the offset of the line that goes on in the next block (``head``)
    head = b""  # that line's bytes so far
    long = False  # that line passed the limit: the rest of it is read and dropped
    after_cr = False  # the block before ended with \r: a \n opening this one ends that line
    while chunk := raw.read(block):
        if after_cr and chunk[:1] == b"\n":
            chunk = chunk[1:]
            at += 1
        after_cr = chunk[-1:] == b"\r"
        pieces = chunk.splitlines(keepends=True)
        tail = pieces.pop() if pieces and chunk[-1:] not in (b"\n", b"\r") else b""
        for piece in pieces:
            number += 1
            body = piece.rstrip(b"\r\n")  # a line holds no \r or \n but its own end
            if head or long:
                kept = None if long or len(head) + len(body) > limit else head + body
                yield number, start, kept
                head, long = b"", False
            else:
                yield number, at, body if len(body) <= limit else None
            at += len(piece)
        if tail:
            if not (head or long):
                start = at
            if not long:
                head += tail
                if len(head) > limit:
                    head, long = b"", True
            at += len(tail)
    if head or long:  # the last line, with no line end
        yield number + 1, start, None if long else head


def cells(line: str, delimiter: str = ",") -> list[str] | None:
    """One line's cells (``csv``'s default dialect, or ``delimiter`` between them), or None
    when a quote is left open."""
    if '"' not in line:  # the usual line: nothing for the csv module to do
        return line.split(delimiter)
    # with a line end added, an open quote shows itself: csv keeps a line break inside quotes
    row = next(csv.reader([line + "\n"], delimiter=delimiter), [])
    if row and row[-1].endswith("\n"):
        return None
    return row
