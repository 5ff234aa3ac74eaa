"""The preview flow: today's edition built and rendered for one choice of sectors, written to
``digest.html`` and ``digest.txt`` with stand-in reader values; nothing is sent."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from newsletter.config import Config
from newsletter.edition import digest, personalize, render
from newsletter.flows.build import Built, build
from newsletter.models import Edition, RenderedEmail, Section
from newsletter.readers.links import preview_values
from newsletter.store import Store


@dataclass(frozen=True, slots=True)
class PreviewResult:
    built: Built
    edition: Edition | None
    sections: tuple[Section, ...]
    email: RenderedEmail | None
    html_path: Path | None
    text_path: Path | None


def preview(
    config: Config,
    store: Store,
    *,
    out_dir: Path,
    now: datetime,
    sectors: Sequence[str] = (),
) -> PreviewResult:
    """Build today's edition and write ``digest.html`` and ``digest.txt`` without sending.

    When there is no edition today, nothing is written and the result says why.
    """
    built = build(config, store, now=now)
    if built.edition is None:
        return PreviewResult(built, None, (), None, None, None)
    edition = built.edition
    sections = digest.layout(edition, sectors)
    env = render.make_environment(config.templates_dir)
    settings = _with_local_logo(render.settings_for(config))
    variant = render.render_email(env, edition, sections, settings=settings, chosen=sectors)
    email = personalize.Personalizer(variant).fill(preview_values(config.publication.base_url))
    out_dir.mkdir(parents=True, exist_ok=True)
    logo = config.publication.logo
    if logo is not None and logo.file is not None:
        shutil.copyfile(logo.file, out_dir / _local_name(logo.file))
    html_path = out_dir / "digest.html"
    text_path = out_dir / "digest.txt"
    html_path.write_text(email.html, encoding="utf-8")
    text_path.write_text(email.text, encoding="utf-8")
    return PreviewResult(built, edition, sections, email, html_path, text_path)


def _with_local_logo(settings: render.RenderSettings) -> render.RenderSettings:
    """A logo kept as a file is copied beside the preview, which shows that copy: the file
    opens in a browser whether or not `newsletter serve` runs (the email itself links to the
    served address)."""
    logo = settings.logo
    if logo is None or logo.file is None:
        return settings
    return dataclasses.replace(
        settings, logo=logo.model_copy(update={"url": _local_name(logo.file)})
    )


def _local_name(image: Path) -> str:
    return f"logo{image.suffix.lower()}"
