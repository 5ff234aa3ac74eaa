"""``config.yaml`` → a typed, validated ``Config``: ``loading`` (the file, relative paths, the
editor's daily overrides), ``settings`` (every section as a pydantic model: the one place every
default lives), ``yamlfile`` (the one YAML reader), ``problems``, ``references``, ``suggest`` and
``values`` (a file's every problem in our words, with a did-you-mean)."""

from __future__ import annotations

from newsletter.config.dayedits import save_move
from newsletter.config.loading import (
    DATABASE_ENV,
    Config,
    day_sponsor,
    load_config,
    load_overrides,
    sponsor_of,
)

__all__ = [
    "DATABASE_ENV",
    "Config",
    "day_sponsor",
    "load_config",
    "load_overrides",
    "save_move",
    "sponsor_of",
]
