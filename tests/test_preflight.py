"""Pre-flight: a real send through SMTP or SendGrid is refused while the set-up is the
example one, each problem named with its key; the web app probe runs against real servers."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from newsletter.cli import cli
from newsletter.config import load_config
from newsletter.delivery import preflight
from newsletter.delivery.mailers import make_mailer
from newsletter.store import Store
from newsletter.web.app import create_app
from tests.conftest import NOW, write_config
from tests.webserver import running

READY = {
    "publication": {
        "base_url": "https://news.publisher.test",
        "postal_address": "Publisher Ltd, 4 Quay Street, Bristol BS1 4DJ, United Kingdom",
        "url": "https://publisher.co.uk",
        "privacy_url": "https://publisher.co.uk/privacy",
        "terms_url": "https://publisher.co.uk/terms",
    },
    "delivery": {"from_address": "Insights <daily@publisher.co.uk>"},
}


def send(config_path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli,
        ["--config", str(config_path), "send", "--no-collect", *args],
        env={"NEWSLETTER_NOW": NOW.isoformat(), "SENDGRID_API_KEY": "SG.test"},
    )
    return result.exit_code, result.output


@pytest.mark.parametrize("backend", ["smtp", "sendgrid"])
def test_the_example_set_up_is_refused_naming_each_key(tmp_path: Path, backend: str) -> None:
    path = write_config(tmp_path, {"feeds": [], "delivery": {"backend": backend}})
    code, output = send(path)
    assert code == 3
    for key in ("publication.base_url", "publication.postal_address", "delivery.from_address"):
        assert key in output
    assert "https" in output and "Hint:" in output
    assert not (tmp_path / "newsletter.db").exists()  # refused before anything was touched


def test_links_readers_would_follow_to_an_example_site_are_named(tmp_path: Path) -> None:
    publication = {
        key: value for key, value in READY["publication"].items() if key != "privacy_url"
    }
    sponsor = {
        "title": "Advertise here",
        "text": "Reach our readers.",
        "cta_url": "https://example.com/advertise",
    }
    settings: dict[str, object] = {**READY, "feeds": [], "publication": publication}
    settings["sponsor"] = sponsor
    config = load_config(write_config(tmp_path, settings))
    found = preflight.problems(config, probe=lambda url: None)
    assert len(found) == 2
    assert "publication.privacy_url is https://example.com/privacy" in found[0]
    assert "sponsor.cta_url is https://example.com/advertise" in found[1]
    assert "example" in found[1] and "sponsor" in found[1]


def test_the_dry_run_and_the_outbox_are_never_refused(tmp_path: Path) -> None:
    sendgrid = write_config(tmp_path / "sg", {"feeds": [], "delivery": {"backend": "sendgrid"}})
    _, output = send(sendgrid, "--dry-run")
    assert "publication.base_url" not in output
    outbox = write_config(tmp_path / "outbox", {"feeds": []})
    _, output = send(outbox)
    assert "publication.base_url" not in output


def test_a_web_app_that_does_not_answer_is_named(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"feeds": [], **READY})
    config = load_config(path)
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{unused.getsockname()[1]}/healthz"
        found = preflight.problems(config, probe=lambda url: preflight._probe(closed))
    assert len(found) == 1 and "https://news.publisher.test/healthz" in found[0]
    assert "refused" in found[0].lower() or "errno" in found[0].lower()


def test_the_probe_knows_our_web_app_from_another_server(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, {"feeds": [], **READY}))
    store = Store.open(config.database_url)
    ours = create_app(config, store, make_mailer(config), now=lambda: NOW)
    with running(ours) as base:
        assert preflight._probe(f"{base}/healthz") is None
        assert (
            preflight.problems(config, probe=lambda url: preflight._probe(f"{base}/healthz")) == []
        )
    other = Starlette(
        routes=[Route("/healthz", lambda r: PlainTextResponse("<html>parked</html>"))]
    )
    with running(other) as base:
        assert preflight._probe(f"{base}/healthz") == "something else answers there"
        assert preflight._probe(f"{base}/nothing") == "HTTP 404"


@pytest.mark.parametrize(
    ("base_url", "problem"),
    [
        ("http://news.publisher.co.uk", "must be https"),
        ("https://localhost:8000", "points at this machine"),
        ("https://127.0.0.1", "points at this machine"),
        ("https://192.168.1.20", "points at this machine"),
    ],
)
def test_base_urls_readers_cannot_reach_are_named(
    tmp_path: Path, base_url: str, problem: str
) -> None:
    publication = {**READY["publication"], "base_url": base_url}
    settings: dict[str, object] = {"feeds": [], **READY, "publication": publication}
    config = load_config(write_config(tmp_path, settings))
    found = preflight.problems(config, probe=lambda url: None)
    assert len(found) == 1 and problem in found[0] and "publication.base_url" in found[0]
