"""A CSV import's header row: which column is which, by name, in any order ("Name,Company,
E-mail" as a spreadsheet or another tool exported it), and the columns we do not import.

A row is a header when a cell names the address column ("email", "e-mail", "address", ...)
and no cell holds an address. Without a header, the columns are ours in our order:
``COLUMNS``, as ``subscribers export`` writes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# the columns an import reads, in the order of a file without a header
COLUMNS = (
    "email",
    "name",
    "sectors",
    "status",
    "timezone",
    "hour",
    "frequency",
    "weekday",
    "watchlist",
)
_OTHER_NAMES = {
    "e-mail": "email",
    "email address": "email",
    "e-mail address": "email",
    "address": "email",
    "full name": "name",
    "time zone": "timezone",
    "delivery hour": "hour",
}
ADDRESS_NAMES = frozenset(name for name, column in _OTHER_NAMES.items() if column == "email")
ADDRESS_NAMES |= {"email"}


@dataclass(frozen=True, slots=True)
class Header:
    """Where each of ``COLUMNS`` is in the file's rows (None: absent), up to the last one the
    file has; ``positions`` None when they are ours in our order. ``left_out``: the file's
    columns we do not import, by their names."""

    positions: tuple[int | None, ...] | None
    left_out: tuple[str, ...]

    def ours(self, row: Sequence[str]) -> list[str]:
        """A row's cells in our order."""
        if self.positions is None:
            return list(row)
        return [row[i] if i is not None and i < len(row) else "" for i in self.positions]


def read_header(row: Sequence[str]) -> Header | None:
    """The header ``row`` is, or None when it is a reader's row."""
    names = [cell.strip().lower() for cell in row]
    if not ADDRESS_NAMES & set(names) or any("@" in cell for cell in row):
        return None
    found: dict[str, int] = {}
    left_out = []
    for at, (cell, name) in enumerate(zip(row, names, strict=True)):
        column = _OTHER_NAMES.get(name, name)
        if column in COLUMNS and column not in found:
            found[column] = at
        elif name:
            left_out.append(cell.strip())
    last = max(COLUMNS.index(column) for column in found)
    positions = tuple(found.get(column) for column in COLUMNS[: last + 1])
    ours = positions == tuple(range(len(positions)))
    return Header(None if ours else positions, tuple(left_out))
