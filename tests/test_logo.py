"""A logo kept as a file next to the config: checked at load, linked from the email at the
address `newsletter serve` serves it from, and shown by a preview opened from the disk."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from newsletter import flows
from newsletter.config import load_config
from newsletter.delivery.mailers import make_mailer
from newsletter.errors import ConfigError
from newsletter.flows.preview import preview
from newsletter.store import Store
from newsletter.web.app import create_app
from tests.conftest import NOW, ROOT, write_config
from tests.webserver import running

LOGO = ROOT / "examples" / "demo" / "logo.png"


def _config(
    folder: Path, logo: dict[str, object], base_url: str = "https://news.example.com"
) -> Path:
    publication = {"base_url": base_url, "logo": {"alt": "Top Insights Today", **logo}}
    feeds = [{"name": "Charge Lane", "url": str(ROOT / "examples/demo/feeds/charge-lane.xml")}]
    return write_config(folder, {"publication": publication, "feeds": feeds})


def test_a_logo_file_is_linked_where_the_site_serves_it(tmp_path: Path) -> None:
    (tmp_path / "brand.png").write_bytes(LOGO.read_bytes())
    config = load_config(_config(tmp_path, {"file": "brand.png"}))
    logo = config.publication.logo
    assert logo is not None and logo.file == tmp_path.resolve() / "brand.png"
    assert logo.url == "https://news.example.com/logo.png"


@pytest.mark.parametrize(
    ("logo", "base_url", "expected"),
    [
        ({"file": "brand.svg"}, "https://n.example.com", "is not a PNG, JPEG, GIF or WebP image"),
        ({"file": "missing.png"}, "https://n.example.com", "missing.png not found"),
        ({"file": "big.png"}, "https://n.example.com", "big.png is 250 KB, more than 200 KB"),
        ({"file": "brand.png"}, "http://n.example.com", "needs publication.base_url on https"),
        ({}, "https://n.example.com", "give the logo's url (https://...) or its file"),
    ],
)
def test_a_logo_that_cannot_be_served_is_refused_at_load(
    tmp_path: Path, logo: dict[str, object], base_url: str, expected: str
) -> None:
    (tmp_path / "brand.png").write_bytes(LOGO.read_bytes())
    (tmp_path / "brand.svg").write_text("<svg/>", encoding="utf-8")
    (tmp_path / "big.png").write_bytes(b"\x89PNG" + b"\0" * 250_000)
    with pytest.raises(ConfigError) as caught:
        load_config(_config(tmp_path, logo, base_url))
    assert expected in str(caught.value), caught.value
    assert "publication.logo" in str(caught.value)


def test_a_local_site_may_serve_its_logo_over_http(tmp_path: Path) -> None:
    (tmp_path / "brand.png").write_bytes(LOGO.read_bytes())
    config = load_config(_config(tmp_path, {"file": "brand.png"}, "http://localhost:8000"))
    assert config.publication.logo is not None
    assert config.publication.logo.url == "http://localhost:8000/logo.png"


def test_the_preview_shows_a_copy_of_the_logo_beside_it(tmp_path: Path) -> None:
    (tmp_path / "brand.png").write_bytes(LOGO.read_bytes())
    config = load_config(_config(tmp_path, {"file": "brand.png", "width": 200}))
    store = Store.open(config.database_url)
    try:
        flows.collect_all(config, store, now=NOW)
        result = preview(config, store, out_dir=tmp_path / "out", now=NOW)
    finally:
        store.close()
    assert result.html_path is not None
    html = result.html_path.read_text(encoding="utf-8")
    assert 'src="logo.png"' in html and 'alt="Top Insights Today"' in html
    assert (tmp_path / "out" / "logo.png").read_bytes() == LOGO.read_bytes()


def test_serve_serves_the_logo_file_where_the_email_links_to_it(tmp_path: Path) -> None:
    (tmp_path / "brand.png").write_bytes(LOGO.read_bytes())
    config = load_config(_config(tmp_path, {"file": "brand.png"}))
    store = Store.open(config.database_url)
    try:
        app = create_app(config, store, make_mailer(config), now=lambda: NOW)
        with running(app) as base:
            answer = httpx.get(f"{base}/logo.png")
            other = httpx.get(f"{base}/logo.gif")
            page = httpx.get(f"{base}/subscribe")
    finally:
        store.close()
    assert answer.status_code == 200 and answer.content == LOGO.read_bytes()
    assert answer.headers["content-type"] == "image/png"
    # every email and page loads it: kept by browsers and proxies for a day
    assert answer.headers["cache-control"] == "public, max-age=86400"
    assert other.status_code == 404
    # the pages' security policy lets the site's own image load (on a local http site too)
    assert "img-src 'self' https:" in page.headers["content-security-policy"]
