"""The sections of config.yaml that ``newsletter serve`` reads: the privacy key, the readers'
sign-up, the public pages, and the editor's desk. ``settings.ConfigFile`` holds them."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from newsletter.config.values import Strict


class PrivacyConfig(Strict):
    """The secret that keys the hashes of erased and suppressed addresses."""

    # the environment variable holding the key (any long random text); without it, the key
    # file below is used, and created with a random key on first use
    key_env: str = "NEWSLETTER_PRIVACY_KEY"
    key_file: Path = Path("privacy.key")


class SignupConfig(Strict):
    """The readers' sign-up on the web."""

    confirm_link_days: float = Field(7, gt=0, le=365)  # a confirmation link expires after this
    # addresses of the reverse proxies whose X-Forwarded-For is believed (default: none)
    trusted_proxies: list[str] = []
    # accepted sign-ups per client address, and where they are counted: database (every web
    # instance on the database shares the count), memory:// for one web process alone, or
    # redis://host:6379 (or memcached://) with its client library installed
    per_ip: str = Field("5/10 minutes", pattern=r"^\d+\s*(/|per)\s*\d*\s*\w+$")
    rate_limit_storage: str = "database"


class WebConfig(Strict):
    """The public pages of `newsletter serve`: the archive, sector pages and feeds."""

    robots: str = "index, follow"  # the pages' robots meta tag; "noindex" keeps them out of search
    archive_page_size: int = Field(20, ge=1, le=200)  # editions per archive page
    sector_stories: int = Field(30, ge=1, le=200)  # stories on a sector page and in its feed
    sector_days: int = Field(14, ge=1, le=365)  # editions a sector page reaches back over


class DeskConfig(Strict):
    """The editor's desk (``/desk`` on `newsletter serve`; docs/desk.md)."""

    session_hours: float = Field(12, gt=0, le=24 * 30)  # a session ends this long after sign-in
    # the variable holding the key that signs the desk's session cookies (any long random
    # text); without it (or ""), the key file below, created with a random key on first use
    secret_key_env: str = Field("NEWSLETTER_SECRET_KEY", pattern=r"^([A-Za-z_][A-Za-z0-9_]*)?$")
    secret_key_file: Path = Path("secret.key")
    # wrong passwords allowed per account and per client address in a moving window; the next
    # attempt is refused until the window has room (counted in the database)
    sign_in_per_account: str = Field("10/minute", pattern=r"^\d+\s*(/|per)\s*\d*\s*\w+$")
    sign_in_per_ip: str = Field("10/minute", pattern=r"^\d+\s*(/|per)\s*\d*\s*\w+$")
    link_hours: float = Field(24, gt=0, le=24 * 14)  # a one-time set-password link works this long
