"""Network failures as a person reads them: one line per failing feed with its host and a plain
reason, one short paragraph when no feed could be reached at all, and a preview with nothing to
show that says what to check next. Every address is on this machine: a closed port refuses, and
a name no resolver can take is never resolved."""

from __future__ import annotations

import re
import socket
from pathlib import Path

from click.testing import CliRunner

from newsletter.cli import cli
from tests.conftest import ROOT, write_config
from tests.feedserver import FeedServer

ENV = {"NEWSLETTER_NOW": "2026-11-25T06:00:00+00:00", "COLUMNS": "80"}
# a label of 64 letters is no DNS name: the C library refuses it before asking any server, so
# the name is "not resolved" without a packet leaving the machine
NOWHERE = "n" * 64 + ".example"
RAW = ("ConnectError", "Errno", "Error:", "ConnectTimeout", "gaierror", "All connection attempts")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=ENV)
    return result.exit_code, result.stdout, result.stderr


def closed_port() -> int:
    """A local port nothing listens on (it was free a moment ago): a connection is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_each_failing_feed_is_one_line_with_its_host_and_a_plain_reason(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    good = (ROOT / "examples/demo/feeds/charge-lane.xml").read_bytes()
    port = closed_port()
    feeds = [
        {"name": "Good", "url": feed_server.add("/good.xml", good)},
        {"name": "Refused", "url": f"http://127.0.0.1:{port}/feed.xml"},
        {"name": "Nowhere", "url": f"https://{NOWHERE}/feed.xml"},
        {"name": "Missing", "url": feed_server.url("/missing.xml")},
    ]
    path = write_config(tmp_path, {"feeds": feeds})
    code, stdout, _ = run("--config", str(path), "collect")
    assert code == 0
    server = feed_server.url("/").split("/")[2]
    assert stdout.splitlines()[:4] == [
        "ok     Good: 4 new, 4 in feed",
        f"failed Refused (127.0.0.1:{port}): could not connect (connection refused)",
        f"failed Nowhere ({NOWHERE}): name not resolved",
        f"failed Missing ({server}): HTTP 404 Not Found",
    ]
    assert not any(raw in stdout for raw in RAW)
    code, stdout, _ = run("--config", str(path), "status")
    assert "Refused: could not connect (connection refused)" in stdout
    assert "Nowhere: name not resolved" in stdout


def test_preview_with_no_feed_reachable_says_so_in_one_short_paragraph(tmp_path: Path) -> None:
    feeds = [
        {"name": f"Feed {i}", "url": f"http://127.0.0.1:{closed_port()}/feed.xml"} for i in range(3)
    ]
    feeds.append({"name": "Far Away", "url": f"https://{NOWHERE}/rss"})
    path = write_config(tmp_path, {"feeds": feeds})
    code, stdout, stderr = run("--config", str(path), "preview", "--out", str(tmp_path / "p"))
    assert code == 5  # nothing to send today
    assert "Feed 0" not in stdout and "Far Away" not in stdout  # no line per feed
    assert not any(raw in stdout for raw in RAW)
    paragraph = " ".join(stdout.split())
    assert paragraph.startswith(
        "None of the 4 feeds could be reached (could not connect: 3, name not resolved: 1): "
        "this computer seems to be offline or unable to look up names."
    )
    assert "`newsletter status`" in paragraph
    assert stdout.strip().count("\n\n") == 0 and len(stdout.strip().splitlines()) <= 4
    assert all(len(line) <= 80 for line in stdout.splitlines())
    assert stderr.startswith("Error: no edition for 2026-11-25: no story from the last 36 hours")
    hint = " ".join(stderr.split("Hint: ", 1)[1].split())
    assert "No story from the last 36 hours is stored" in hint
    assert "`newsletter status`" in hint and "digest.max_age_hours" in hint
    assert not (tmp_path / "p").exists()


def test_collect_with_no_feed_reachable_exits_1_after_the_paragraph(tmp_path: Path) -> None:
    feeds = [{"name": "Only", "url": f"http://127.0.0.1:{closed_port()}/feed.xml"}]
    path = write_config(tmp_path, {"feeds": feeds})
    code, stdout, stderr = run("--config", str(path), "collect")
    assert code == 1
    assert " ".join(stdout.split()).startswith(
        "None of the 1 feeds could be reached (could not connect: 1)"
    )
    assert "Error: none of the 1 feeds could be collected" in stderr
    assert "`newsletter status`" in stderr


def test_a_preview_whose_stories_fit_no_sector_says_how_to_see_why(tmp_path: Path) -> None:
    feed = tmp_path / "sport.xml"
    feed.write_text(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item>'
        "<title>Local team wins the cup final</title><link>https://s.example.com/1</link>"
        "<pubDate>Wed, 25 Nov 2026 04:00:00 +0000</pubDate></item></channel></rss>",
        encoding="utf-8",
    )
    path = write_config(tmp_path, {"feeds": [{"name": "Sport", "url": str(feed)}]})
    code, _, stderr = run("--config", str(path), "preview", "--out", str(tmp_path / "p"))
    assert code == 5
    hint = " ".join(stderr.split("Hint: ", 1)[1].split())
    assert re.search(r"1 story from the last 36 hours, none of them in a sector", hint)
    assert "`newsletter stories --since 36`" in hint and "--explain ID" in hint
