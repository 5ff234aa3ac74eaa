"""The one module that reads and writes YAML (the config, a sectors file, the editor's
overrides), and its errors as a person reads them: file, line, key path, what to do next.

``read`` parses a file once into its node tree (for line numbers) and its data, or raises a
``ConfigError`` naming the file and line.

``line_of`` and ``where`` find the line of a key path in the node tree, so that every
problem (``problems``) names the file, the line and the key path, e.g.
``config.yaml, line 12: feeds[3].sector: unknown sector 'oil'``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from newsletter.errors import ConfigError

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's, when built with it


Node = yaml.Node  # a parsed document's node tree, for the line of a key


def read(path: Path, *, keys_twice: bool = False) -> tuple[Node | None, Any]:
    """A YAML file's node tree and data; ``ConfigError`` with the line when it is not YAML, or
    (unless ``keys_twice``: the caller lists them with its other problems, ``given_twice``)
    when a mapping gives a key twice."""
    root, data = parse_text(path, path.read_text(encoding="utf-8"))
    if not keys_twice:
        _no_key_twice(path, root)
    return root, data


def parse_text(path: Path, text: str) -> tuple[Node | None, Any]:
    """``parse`` of the text read from ``path``; ``ConfigError`` naming the file and line when
    it is not YAML."""
    try:
        return parse(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        context, opened = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and opened is not None and mark is not None and opened.line != mark.line:
            # an unclosed bracket or quote: where it opens, not only where the parser gave up
            line = f", line {opened.line + 1}"
            problem = f"{context} here: {problem} (by line {mark.line + 1})"
        raise ConfigError(
            f"{path}{line}: not valid YAML: {problem}",
            hint="Check the indentation, quoting and brackets around that line.",
        ) from None


def given_twice(node: Node | None, loc: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], int]]:
    """Each key a mapping gives twice (YAML keeps the last): its key path, and the line it is
    given again at."""
    found: list[tuple[tuple[Any, ...], int]] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    found.append(((*loc, key.value), key.start_mark.line + 1))
                seen.add(key.value)
                found += given_twice(value, (*loc, key.value))
    elif isinstance(node, yaml.SequenceNode):
        for n, item in enumerate(node.value):
            found += given_twice(item, (*loc, n))
    return found


def _no_key_twice(path: Path, root: Node | None) -> None:
    """``ConfigError`` for the first key a mapping gives twice."""
    for loc, line in given_twice(root)[:1]:
        raise ConfigError(
            f"{path}, line {line}: {dotted(loc)} is given twice; only the last would count",
            hint="Keep one and merge the settings of both into it.",
        )


def write(path: Path, data: Any) -> None:
    """Write ``data`` as YAML, keys in their order, text as it is."""
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


def parse(text: str) -> tuple[Node | None, Any]:
    """One parse of a YAML document: its node tree (for line numbers) and its data."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        return root, (loader.construct_document(root) if root is not None else None)
    finally:
        loader.dispose()


def dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def where(path: Path, root: Node | None, loc: tuple[Any, ...]) -> str:
    """``path, line N`` for the deepest YAML node along ``loc`` that exists."""
    line = line_of(root, loc)
    return f"{path}, line {line}" if line is not None else str(path)


def line_of(root: Node | None, loc: tuple[Any, ...]) -> int | None:
    """The line of the deepest YAML node along ``loc`` that exists (its key's line)."""
    node = root
    line: int | None = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    child = value
                    line = key.start_mark.line + 1
                    break
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(part, int)
            and 0 <= part < len(node.value)
        ):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line
