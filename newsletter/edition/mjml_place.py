"""Where an MJML error comes from: MRML says what is wrong, never where; the rendered MJML,
read as XML, points at a line, traced back to the template line most like it."""

from __future__ import annotations

import difflib
import re
import xml.parsers.expat
from pathlib import Path

_TAG_MISMATCH = xml.parsers.expat.errors.XML_ERROR_TAG_MISMATCH
_JINJA = re.compile(r"{{.*?}}|{%.*?%}|{#.*?#}")


def error_place(path: str, source: str) -> str:
    """``template, line N`` of the likely cause of an MJML error (MRML gives no position).

    The rendered MJML is read as XML: a mismatched tag is where the reader stops; an element
    never closed is where it was opened. That line of output is traced back to the template line
    whose literal text is most like it.
    """
    opened: list[int] = []
    parser = xml.parsers.expat.ParserCreate()
    parser.StartElementHandler = lambda name, attrs: opened.append(parser.CurrentLineNumber)
    parser.EndElementHandler = lambda name: opened.pop() if opened else None
    try:
        parser.Parse(source, True)
        return path
    except xml.parsers.expat.ExpatError as exc:
        mismatch = exc.code == xml.parsers.expat.errors.codes[_TAG_MISMATCH]
        unclosed = mismatch or exc.lineno >= source.count("\n")
        line = opened[-1] if unclosed and opened else exc.lineno
    rendered = source.splitlines()[line - 1] if 0 < line <= len(source.splitlines()) else ""
    try:
        template_lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError:
        return path
    literal = [_JINJA.sub("", text).strip() for text in template_lines]
    target = rendered.strip()
    best = max(
        range(len(template_lines)),
        key=lambda i: difflib.SequenceMatcher(None, literal[i], target).ratio(),
        default=None,
    )
    return path if best is None else f"{path}, line {best + 1}"
