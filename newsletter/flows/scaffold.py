"""``newsletter init DIR``: a new publication's folder, with a config and templates to edit."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from newsletter.edition.render import BUILTIN_TEMPLATES, TEMPLATE_NAMES
from newsletter.errors import ConfigError

DEFAULT_CONFIG = Path(__file__).parent.parent / "defaults" / "config.yaml"

HEADER = """\
# A new publication, made by `newsletter init`. Edit freely: every key is described in the
# newsletter README ("Configuration"). Try it: newsletter --config {path} preview
"""


def init_publication(folder: Path) -> list[Path]:
    """Write ``config.yaml`` and ``templates/`` into ``folder``; returns the files written.

    Refuses to overwrite: an existing config or template stops it before anything is written.
    """
    config = folder / "config.yaml"
    templates = folder / "templates"
    targets = [config, *(templates / name for name in TEMPLATE_NAMES)]
    existing = [path for path in targets if path.exists()]
    if existing:
        raise ConfigError(
            f"{existing[0]} already exists; nothing was written",
            hint="Choose an empty folder, or move the existing files away first.",
        )
    templates.mkdir(parents=True, exist_ok=True)
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    text = re.sub(
        r"^(database: .*)$",
        r"\1\ntemplates: templates                       # your copy of the email templates",
        text,
        count=1,
        flags=re.M,
    )
    config.write_text(HEADER.format(path=config) + text, encoding="utf-8")
    for name in TEMPLATE_NAMES:
        shutil.copyfile(BUILTIN_TEMPLATES / name, templates / name)
    return targets
