"""The one module that reads and writes YAML (the config, a sectors file, the editor's
overrides), and its errors as a person reads them: file, line, key path, what to do next.

``read`` parses a file once into its node tree (for line numbers) and its data, or raises a
``ConfigError`` naming the file and line.

``validation_error`` turns the first pydantic error into a ``ConfigError`` naming the file, the
line (found in the YAML node tree) and the key path, e.g.
``config.yaml, line 12: feeds[3].sector: unknown sector 'oil'``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from newsletter.errors import ConfigError

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's, when built with it


Node = yaml.Node  # a parsed document's node tree, for the line of a key


def read(path: Path) -> tuple[Node | None, Any]:
    """A YAML file's node tree and data; ``ConfigError`` with the line when it is not YAML."""
    try:
        return parse(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(
            f"{path}{line}: not valid YAML: {problem}",
            hint="Check the indentation and quoting around that line.",
        ) from None


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


def validation_error(
    path: Path,
    root: Node | None,
    exc: ValidationError,
    *,
    model: type[BaseModel],
) -> ConfigError:
    """The first validation error, phrased for a person: file, line, key path, what to do."""
    err = exc.errors()[0]
    loc = tuple(err["loc"])
    key_path = dotted(loc)
    kind = err["type"]
    if kind == "extra_forbidden":
        parent = loc[:-1]
        known = known_keys(parent, model)
        message = f"unknown key {loc[-1]!r}"
        hint = f"Known keys here: {', '.join(known)}." if known else "Remove the key."
    elif kind == "missing":
        message = "required key is missing"
        hint = "Add it; see the README's configuration section."
    else:
        message = err["msg"].removeprefix("Value error, ")
        shown = err.get("input")
        if shown is not None and not isinstance(shown, dict | list):
            message += f" (got {shown!r})"
        hint = "Fix the value; see the README's configuration section for each key."
    more = len(exc.errors()) - 1
    if more:
        hint += f" ({more} more problem{'s' if more > 1 else ''} after this one.)"
    return ConfigError(f"{where(path, root, loc)}: {key_path}: {message}", hint=hint)


def known_keys(parent: tuple[Any, ...], model: type[BaseModel]) -> list[str]:
    for part in parent:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return []
        annotation = field.annotation
        inner = getattr(annotation, "__args__", (annotation,))
        nested = next((a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if nested is None:
            return []
        model = nested
    return list(model.model_fields)


def dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def where(path: Path, root: Node | None, loc: tuple[Any, ...]) -> str:
    """``path, line N`` for the deepest YAML node along ``loc`` that exists."""
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
    return f"{path}, line {line}" if line is not None else str(path)
