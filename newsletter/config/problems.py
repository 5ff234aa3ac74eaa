"""A config file's problems in our own words: every one at once, each with the file, the line
and the key path, and a did-you-mean where a near name exists.

``from_validation`` phrases pydantic's errors (never its own wording: "expected a whole number,
got 'five'", not "Input should be a valid integer"); ``loading`` adds what pydantic cannot
know (``references``); ``config_error`` makes them one ``ConfigError``, in the order of the
file::

    config.yaml: 2 problems
      line 12: digest.per_sector: expected a whole number, got 'five'
      line 20: schedule.timezone: unknown time zone 'Europe/Londn'; did you mean 'Europe/London'?
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from newsletter.config.settings import SLUG_PATTERN
from newsletter.config.suggest import did_you_mean, nearest
from newsletter.config.yamlfile import Node, dotted, line_of
from newsletter.errors import ConfigError

Loc = tuple[str | int, ...]
README = "the README's configuration section describes every key"

# what each pattern of settings.py asks for, in words (tests/test_config_problems.py checks
# that every pattern has its words)
PATTERNS = {
    SLUG_PATTERN: "a slug of lowercase letters, digits and single hyphens, such as oil-gas",
    r"^https?://": "a web address starting with https:// (or http://)",
    r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$": "a language code such as en or en-GB",
    r"^[a-z]{2,3}$": "a two- or three-letter language code such as fr",
    r"^[A-Za-z0-9.-]+$": "letters, digits, dots and hyphens only, such as news.example.com",
    r"^[^@\s<>]+@[^@\s<>]+$": "a bare address such as bounces@example.com",
    r"^\d+\s*(/|per)\s*\d*\s*\w+$": 'a rate such as "5/10 minutes"',
    r"^(https?://\S+)?$": "a web address such as https://api.example.com/v1, or nothing",
    r"^([A-Za-z_][A-Za-z0-9_]*)?$": "the name of an environment variable, such as MY_API_KEY",
}


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong at ``loc`` (the key path), said after it; ``hint`` says what to do."""

    loc: Loc
    message: str
    hint: str = ""


def config_error(path: Path, root: Node | None, problems: Sequence[Problem]) -> ConfigError:
    """Every problem in one error, in the order of the file, each with its line and key path."""
    placed = sorted(
        ((line_of(root, p.loc), i, p) for i, p in enumerate(problems)),
        key=lambda item: (item[0] or 0, item[1]),
    )
    lines = tuple(
        f"{'line ' + str(line) + ': ' if line else ''}{dotted(p.loc)}: {p.message}"
        for line, _, p in placed
    )
    hints = list(dict.fromkeys(p.hint for _, _, p in placed if p.hint))
    if len(lines) == 1:
        only = placed[0][0]
        at = f"{path}, line {only}" if only else str(path)
        message = f"{at}: {dotted(placed[0][2].loc)}: {placed[0][2].message}"
        hint = hints[0] if hints else f"Fix the value; {README}."
    else:
        message = f"{path}: {len(lines)} problems\n" + "\n".join(f"  {line}" for line in lines)
        hint = "\n".join([*hints, f"Fix each line above; {README}."])
    return ConfigError(message, hint=hint, problems=lines)


def validation_error(
    path: Path, root: Node | None, exc: ValidationError, *, model: type[BaseModel]
) -> ConfigError:
    return config_error(path, root, from_validation(exc, model))


def from_validation(exc: ValidationError, model: type[BaseModel]) -> list[Problem]:
    """Each of pydantic's errors as a ``Problem`` in our words, a union's noise left out."""
    found: list[tuple[Loc, bool, dict[str, Any]]] = []
    for details in exc.errors():
        loc, tagged = _tidy(tuple(details["loc"]), model)
        found.append((loc, tagged, dict(details)))
    # a misspelt key is one problem, not also its right spelling missing
    meant = {
        (*loc[:-1], nearest(str(loc[-1]), _known_keys(loc, model)))
        for loc, _, err in found
        if err["type"] == "extra_forbidden"
    }
    problems = []
    for loc, tagged, err in found:
        # `sponsor: {...}` that is no good sponsor is no `false` either: say the first only
        if tagged and any(o != loc and o[: len(loc)] == loc for o, t, _ in found if not t):
            continue
        if err["type"] == "missing" and loc in meant:
            continue
        problems.append(_phrase(loc, err, model))
    return problems


def _phrase(loc: Loc, err: dict[str, Any], model: type[BaseModel]) -> Problem:
    kind: str = err["type"]
    ctx: dict[str, Any] = err.get("ctx") or {}
    value = err.get("input")
    if kind == "extra_forbidden":
        return _unknown_key(loc, model)
    if kind == "missing":
        return Problem(loc, "required key missing", f"Add it; {README}.")
    if kind in {"value_error", "assertion_error"}:
        return Problem(loc, str(ctx.get("error", err["msg"])))
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        near = did_you_mean(value, choices) if isinstance(value, str) else ""
        return Problem(loc, f"expected one of {ctx.get('expected')}, {_got(value)}{near}")
    if kind in {"model_type", "dict_type", "model_attributes_type"}:
        keys = _known_keys((*loc, ""), model)
        listed = f" ({', '.join(keys[:3])}, ...)" if keys else ""
        return Problem(loc, f"expected keys and values{listed}, {_got(value)}")
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        wanted = PATTERNS.get(pattern, f"text of the form {pattern}")
        return Problem(loc, f"expected {wanted}, {_got(value)}")
    say = _SAYINGS.get(kind)
    if say is not None:
        return Problem(loc, say(ctx, value))
    # a kind not met before: pydantic's words, better than none
    return Problem(loc, f"{err['msg'][:1].lower()}{err['msg'][1:]}, {_got(value)}")


def _count(ctx: dict[str, Any], key: str, what: str) -> str:
    n = int(ctx.get(key, 0))
    return f"{n} {what}{'' if n == 1 else 's'}"


def _text_error(value: object) -> str:
    quote = " (put it in quotes)" if isinstance(value, int | float) else ""
    return f"expected text, {_got(value)}{quote}"


def _too_short(ctx: dict[str, Any], value: object) -> str:
    if ctx.get("min_length") == 1:
        return "must not be empty"
    return f"must be at least {_count(ctx, 'min_length', 'character')} long, {_got(value)}"


_SAYINGS: dict[str, Callable[[dict[str, Any], Any], str]] = {
    "int_parsing": lambda c, v: f"expected a whole number, {_got(v)}",
    "int_type": lambda c, v: f"expected a whole number, {_got(v)}",
    "int_from_float": lambda c, v: f"expected a whole number, {_got(v)}",
    "float_parsing": lambda c, v: f"expected a number, {_got(v)}",
    "float_type": lambda c, v: f"expected a number, {_got(v)}",
    "bool_parsing": lambda c, v: f"expected true or false, {_got(v)}",
    "bool_type": lambda c, v: f"expected true or false, {_got(v)}",
    "string_type": lambda c, v: _text_error(v),
    "list_type": lambda c, v: f"expected a list, {_got(v)}",
    "time_parsing": lambda c, v: f'expected a time such as "07:00", {_got(v)}',
    "time_type": lambda c, v: f'expected a time such as "07:00", {_got(v)}',
    "greater_than_equal": lambda c, v: f"must be at least {_number(c.get('ge'))}, {_got(v)}",
    "greater_than": lambda c, v: f"must be more than {_number(c.get('gt'))}, {_got(v)}",
    "less_than_equal": lambda c, v: f"must be at most {_number(c.get('le'))}, {_got(v)}",
    "less_than": lambda c, v: f"must be less than {_number(c.get('lt'))}, {_got(v)}",
    "string_too_short": _too_short,
    "string_too_long": lambda c, v: (
        f"must be at most {_count(c, 'max_length', 'character')} long"
        + (f", got {len(v)}" if isinstance(v, str) else "")
    ),
    "too_short": lambda c, v: f"needs at least {_count(c, 'min_length', 'entry')}",
    "too_long": lambda c, v: f"takes at most {_count(c, 'max_length', 'entry')}",
}


def _number(value: object) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def _got(value: object) -> str:
    if value is None:
        return "got nothing"
    if isinstance(value, bool):
        return f"got {str(value).lower()}"
    if isinstance(value, dict):
        return "got keys and values"
    if isinstance(value, list):
        return "got a list"
    shown = repr(value)
    return f"got {shown if len(shown) <= 60 else shown[:57] + '...'}"


def _unknown_key(loc: Loc, model: type[BaseModel]) -> Problem:
    key = str(loc[-1])
    known = _known_keys(loc, model)
    under = f"under {dotted(loc[:-1])}" if loc[:-1] else "at the top"
    hint = f"Known keys {under}: {', '.join(known)}." if known else "Remove the key."
    return Problem(loc, f"unknown key {key!r}{did_you_mean(key, known)}", hint)


def _known_keys(loc: Loc, model: type[BaseModel]) -> list[str]:
    """The keys of the model that holds the last part of ``loc``."""
    holder = _model_at(loc[:-1], model)
    return list(holder.model_fields) if holder is not None else []


def _model_at(loc: Loc, model: type[BaseModel]) -> type[BaseModel] | None:
    current: type[BaseModel] | None = model
    for part in loc:
        if isinstance(part, int) or current is None:
            continue  # a list's item is of the list's model
        field = current.model_fields.get(part)
        nested = _models_in(field.annotation) if field is not None else []
        current = nested[0] if nested else None
    return current


def _tidy(loc: Loc, model: type[BaseModel]) -> tuple[Loc, bool]:
    """``loc`` without the names pydantic gives a union's members (``sponsor.SponsorConfig.
    title`` is ``sponsor.title``); and whether it ended at a member that is no model."""
    out: list[str | int] = []
    current: type[BaseModel] | None = model
    members: dict[str, type[BaseModel]] = {}
    for part in loc:
        if isinstance(part, str) and part in members:
            current, members = members[part], {}
            continue
        if isinstance(part, str) and part.startswith(("literal[", "function-", "nullable[")):
            return tuple(out), True
        out.append(part)
        if isinstance(part, int) or current is None:
            continue
        field = current.model_fields.get(part)
        nested = _models_in(field.annotation) if field is not None else []
        current = nested[0] if nested else None
        members = {m.__name__: m for m in nested}
    return tuple(out), False


def _models_in(annotation: object) -> list[type[BaseModel]]:
    """The models an annotation holds: itself, a list's items, a union's members."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in getattr(annotation, "__args__", ()) for m in _models_in(arg)]
