"""A logo given as a file next to the config: checked at load, and served by ``newsletter
serve`` at ``publication.base_url`` + ``/logo.png`` (the address the email and pages use)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from newsletter.config import yamlfile
from newsletter.config.settings import ConfigFile
from newsletter.config.yamlfile import where
from newsletter.errors import ConfigError

LOGO_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
LOGO_TYPES |= {".gif": "image/gif", ".webp": "image/webp"}
LOGO_MAX_BYTES = 200_000
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


def with_logo_served(
    path: Path, root: yamlfile.Node | None, parsed: ConfigFile, base: Path
) -> ConfigFile:
    """A logo given as a file: checked, its path made absolute, and its ``url`` the address
    where ``newsletter serve`` serves it (``publication.base_url`` + ``/logo.png``)."""
    publication = parsed.publication
    logo = publication.logo
    if logo is None or logo.file is None:
        return parsed
    place = f"{where(path, root, ('publication', 'logo', 'file'))}: publication.logo.file"
    image = _resolve(logo.file, base)
    kind = LOGO_TYPES.get(image.suffix.lower())
    if kind is None:
        raise ConfigError(
            f"{place}: {image.name} is not a PNG, JPEG, GIF or WebP image",
            hint="Give the logo as a .png (best in email), .jpg, .gif or .webp file.",
        )
    if not image.is_file():
        raise ConfigError(f"{place}: file {image} not found", hint="Check the path.")
    if image.stat().st_size > LOGO_MAX_BYTES:
        raise ConfigError(
            f"{place}: {image.name} is {image.stat().st_size // 1000} KB, more than "
            f"{LOGO_MAX_BYTES // 1000} KB",
            hint="Make it smaller: twice the shown width is enough (logo.width).",
        )
    site = urlsplit(publication.base_url)
    if site.scheme != "https" and site.hostname not in _LOCAL_HOSTS:
        raise ConfigError(
            f"{place}: a logo served from this site needs publication.base_url on https, got "
            f"{publication.base_url!r}",
            hint="Serve the site over https, or give the logo's https url instead of a file.",
        )
    url = f"{publication.base_url.rstrip('/')}/logo{image.suffix.lower()}"
    served = logo.model_copy(update={"file": image, "url": url})
    return parsed.model_copy(
        update={"publication": publication.model_copy(update={"logo": served})}
    )


def _resolve(path: Path, base: Path) -> Path:
    path = path.expanduser()
    return path if path.is_absolute() else base / path
