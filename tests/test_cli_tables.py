"""Every table the commands print fits an 80-column terminal, and what a reader copies from
it (a date, a story's id, an address) is never cut."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.models import SubscriberStatus
from tests.feedserver import FeedServer

NARROW = {"NEWSLETTER_NOW": "2026-11-25T06:00:00+00:00", "COLUMNS": "80"}


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), env=NARROW)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def assert_fits(stdout: str, width: int = 80) -> None:
    too_wide = [line for line in stdout.splitlines() if len(line) > width]
    assert too_wide == [], "\n".join(too_wide)


def test_status_fits_80_columns_and_its_notes_wrap_at_words(
    demo_dir: Path, feed_server: FeedServer
) -> None:
    config = demo_dir / "config.yaml"
    moved = feed_server.add("/old", status=301, headers={"Location": "/a/new/home/feed.xml"})
    feed_server.add("/a/new/home/feed.xml", (demo_dir / "feeds" / "charge-lane.xml").read_bytes())
    with config.open("a", encoding="utf-8") as out:
        out.write(f"  - {{name: A Feed With Quite A Long Name Indeed, url: '{moved}'}}\n")
    run("--config", str(config), "collect")
    stdout = run("--config", str(config), "status")
    assert_fits(stdout)
    flat = " ".join(stdout.split())
    assert "Northwind Commodities: received an HTML page, not a feed" in flat
    # a note is never broken inside a word: every word of it is on the page whole
    note = f"moved permanently to {feed_server.url('/a/new/home/feed.xml')}: update the config"
    assert note in flat
    assert all(word in stdout.split() for word in ("received", "permanently", "update"))
    rows = [line for line in stdout.splitlines() if line.startswith("Northwind")]
    assert rows and "failing" in rows[0] and "never" in rows[0]


def test_stories_shows_each_id_and_date_whole_in_80_columns(demo_dir: Path) -> None:
    config = str(demo_dir / "config.yaml")
    run("--config", config, "collect")
    stories = json.loads(run("--config", config, "stories", "--json"))
    stdout = run("--config", config, "stories")
    assert_fits(stdout)
    words = stdout.split()
    for story in stories:
        assert story["id"] in words  # whole, ready for --explain and the overrides
    dates = re.findall(r"^(\d{4}-\d\d-\d\d \d\d:\d\d)\s", stdout, re.M)
    assert len(dates) == len(stories)
    assert "sanctions-regulation" in words  # a long slug is not cut either
    # the id shown is the one --explain takes
    shown = re.findall(r"\b[0-9a-f]{16}\b", stdout)
    assert run("--config", config, "stories", "--explain", shown[0])


def test_stats_and_subscribers_fit_80_columns_with_whole_dates_and_addresses(
    demo_dir: Path,
) -> None:
    config = str(demo_dir / "config.yaml")
    address = "ana.maria.ortega@newsroom.example.com"
    run(
        "--config",
        config,
        "subscribers",
        "add",
        address,
        "--name",
        "Ana Maria de la Cruz Ortega",
        "--sectors",
        "rare-earths-commodities,sanctions-regulation,business-politics",
    )
    run("--config", config, "send")
    stdout = run("--config", config, "stats")
    assert_fits(stdout)
    assert "2026-11-25" in stdout.split()
    listed = run("--config", config, "subscribers", "list")
    assert_fits(listed)
    assert address in listed.split()
    assert "rare-earths-commodities," in listed.split()
    status = run("--config", config, "status")
    assert_fits(status)
    assert "2026-11-25" in status.split()


def test_explain_fits_80_columns(demo_dir: Path) -> None:
    config = str(demo_dir / "config.yaml")
    run("--config", config, "collect")
    stories = json.loads(run("--config", config, "stories", "--json"))
    story = next(s for s in stories if "Ministers agree" in s["title"])
    stdout = run("--config", config, "stories", "--explain", story["id"])
    table = stdout.split("Matched rules")[1].split("below the threshold")[0]
    assert_fits(table)
    assert "sanctions-regulation" in table.split()


def test_a_long_name_folds_under_its_address_and_cuts_no_other_column(demo_dir: Path) -> None:
    config = str(demo_dir / "config.yaml")
    name = "Maximilian-Alexander-Konstantin-Friedrich-von-Hohenzollern-Sigmaringen-Wittelsbach"
    run("--config", config, "subscribers", "add", "ana@example.com", "--name", "Ana Lima")
    more = ("--name", name, "--sectors", "oil-gas,mining-metals")
    run("--config", config, "subscribers", "add", "max@example.com", *more)
    listed = run("--config", config, "subscribers", "list")
    assert_fits(listed)
    assert listed.split().count(SubscriberStatus.CONFIRMED) == 2  # whole, for both
    assert "…" not in listed and name in "".join(listed.split())  # folded, never cut
    assert "oil-gas," in listed.split()  # the sectors column kept


def test_a_reader_that_closes_the_pipe_early_ends_the_command_quietly(demo_dir: Path) -> None:
    """`newsletter subscribers export | head -1`: the command stops with 141 (128 + SIGPIPE),
    as other Unix tools do, not a disk error (4) or a silent 1."""
    config = str(demo_dir / "config.yaml")
    rows = "".join(f"reader{i}@example.com,Reader {i},oil-gas\n" for i in range(3000))
    (demo_dir / "many.csv").write_text("email,name,sectors\n" + rows, encoding="utf-8")
    run("--config", config, "subscribers", "import", str(demo_dir / "many.csv"))
    command = [sys.executable, "-m", "newsletter", "--config", config, "subscribers", "export"]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **NARROW}
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        assert process.stdout.readline().startswith(b"email,")
        process.stdout.close()  # as `head -1` does
        said = process.stderr.read().decode()
        assert process.wait(timeout=60) == 141, said
    assert said == ""


def test_a_long_address_folds_whole_and_cuts_no_other_column(demo_dir: Path) -> None:
    config = str(demo_dir / "config.yaml")
    address = "a" * 64 + "@" + "sub-domain." * 10 + "example.com"
    run("--config", config, "subscribers", "add", address, "--sectors", "oil-gas")
    listed = run("--config", config, "subscribers", "list")
    assert_fits(listed)
    words = listed.split()
    assert SubscriberStatus.CONFIRMED in words and "oil-gas" in words and "…" not in listed
    folded = "".join(w for w in words if w not in (SubscriberStatus.CONFIRMED, "oil-gas"))
    assert address in folded  # folded, never cut
    assert "1 reader\n" in listed
