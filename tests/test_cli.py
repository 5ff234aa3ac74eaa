from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.config import load_config
from newsletter.models import FeedStatus, FetchOutcome
from tests.conftest import ROOT, write_config
from tests.feedserver import FeedServer

FIXED_NOW = "2026-11-25T06:00:00+00:00"


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    runner = CliRunner()
    result = runner.invoke(cli, list(args), env={"NEWSLETTER_NOW": FIXED_NOW, **(env or {})})
    return result.exit_code, result.stdout, result.stderr


def test_demo_preview_writes_both_files_and_says_where(demo_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "preview"
    code, stdout, stderr = run(
        "--config", str(demo_dir / "config.yaml"), "preview", "--out", str(out)
    )
    assert code == 0, stderr
    html = (out / "digest.html").read_text(encoding="utf-8")
    text = (out / "digest.txt").read_text(encoding="utf-8")
    for path in (out / "digest.html", out / "digest.txt"):
        size = path.stat().st_size
        shown = f"{size / 1024:.1f} KB"
        assert f"Wrote {path} ({shown})" in stdout
    assert "failed Northwind Commodities: received an HTML page, not a feed" in stdout
    assert "ok     Meridian Energy Wire: 5 new, 5 in feed" in stdout
    assert "Subject: Copper hits 18-month high on Chilean mine disruption" in stdout
    assert f"Next: open {(out / 'digest.html').resolve().as_uri()} in a browser" in " ".join(
        stdout.split()
    )

    # Each sector with stories appears, with its stories, and each story once.
    for name in (
        "EVs &amp; Battery Technology",
        "Oil &amp; Gas",
        "Rare Earths &amp; Commodities",
        "Mining &amp; Metals",
        "ESG &amp; Renewable Energy",
        "AI &amp; Semiconductors",
        "Aerospace &amp; Defense",
        "Sanctions &amp; Regulation",
        "Business &amp; Politics",
    ):
        assert name in html
    links = re.findall(r'href="(https://[^"]+)"', html)
    story_links = [link for link in links if link != "https://example.com"]
    assert len(story_links) == len(set(story_links))
    # The story carried by two feeds appears once, naming the other outlet.
    assert (
        html.count(">Ministers agree review of the price cap on Russian refined products</a>") == 1
    )
    assert text.count("Ministers agree review of the price cap") == 1
    assert "also in Policy Desk" in text
    # The near-identical headline from a second outlet is merged too.
    assert text.lower().count("copper hits 18-month high") == 1
    # Off-topic stories stay out.
    for off_topic in ("marathon", "podcasts", "Celebrity chef"):
        assert off_topic not in html and off_topic not in text
    # No markup or scripts from the feeds leak into the email.
    assert "alert(" not in html and "pixel.gif" not in html


def test_preview_for_one_readers_sectors(demo_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "p"
    code, stdout, _ = run(
        "--config",
        str(demo_dir / "config.yaml"),
        "preview",
        "--out",
        str(out),
        "--sectors",
        "evs-battery,aerospace-defense",
    )
    assert code == 0
    text = (out / "digest.txt").read_text(encoding="utf-8")
    assert re.findall(r"^== (.+) ==$", text, re.M) == [
        "Today's brief",
        "Sponsored",
        "EVs & Battery Technology",
        "Aerospace & Defense",
    ]
    # as the email holds them: the brief (two of each section's stories at most), then the rest
    assert "Today's brief: 4 stories" in stdout and "EVs & Battery Technology: 1 story" in stdout


def test_preview_rejects_unknown_sector(demo_dir: Path, tmp_path: Path) -> None:
    code, _, stderr = run(
        "--config",
        str(demo_dir / "config.yaml"),
        "preview",
        "--out",
        str(tmp_path / "p"),
        "--sectors",
        "oil-gas,crypto",
    )
    assert code == 2
    assert "unknown sector 'crypto'" in stderr and "oil-gas" in stderr
    assert not (tmp_path / "p").exists()


def test_stories_json_follows_the_contract(demo_dir: Path) -> None:
    config = str(demo_dir / "config.yaml")
    assert run("--config", config, "collect")[0] == 0
    code, stdout, _ = run("--config", config, "stories", "--json")
    assert code == 0
    items = json.loads(stdout)
    assert len(items) == 30  # every entry of the eight readable demo feeds
    for item in items:
        assert set(item) >= {"id", "title", "url", "source", "published", "summary", "sectors"}
        assert item["url"].startswith("https://")
        assert item["published"].endswith("Z")
        assert datetime.fromisoformat(item["published"]).utcoffset() == timedelta(0)
        assert "<" not in item["summary"]
        assert all(isinstance(s, str) for s in item["sectors"])
    by_title = {item["title"]: item for item in items}
    assert by_title["Harbour city marathon draws a record field of runners"]["sectors"] == []
    assert (
        by_title["Brent crude climbs above $84 as OPEC+ signals deeper output cuts"]["sectors"][0]
        == "oil-gas"
    )
    export = by_title["New export controls target advanced chip-making tools"]["sectors"]
    assert set(export[:2]) == {"ai-semiconductors", "sanctions-regulation"}  # fits two, ranked
    storage = by_title["Grid operator fast-tracks battery storage connections"]
    assert storage["summary"].startswith("Projects that are ready to build will jump the queue")
    assert "pixel" not in storage["summary"] and "alert" not in storage["summary"]


def test_stories_filters_by_sector_and_age(demo_dir: Path) -> None:
    config = str(demo_dir / "config.yaml")
    run("--config", config, "collect")
    _, stdout, _ = run("--config", config, "stories", "--json", "--sector", "aerospace-defense")
    assert {i["source"] for i in json.loads(stdout)} == {"Hangar & Harbor"}
    _, stdout, _ = run("--config", config, "stories", "--json", "--since", "12")
    recent = json.loads(stdout)
    assert recent and all(i["published"] >= "2026-11-24T18:00:00Z" for i in recent)
    code, stdout, _ = run("--config", config, "stories")
    assert code == 0 and "30 stories" in stdout


def test_config_error_exits_3_with_error_and_hint_and_writes_nothing(tmp_path: Path) -> None:
    path = write_config(
        tmp_path, {"feeds": [{"name": "X", "url": "https://x.example.com/f", "sector": "oil"}]}
    )
    code, _, stderr = run("--config", str(path), "preview", "--out", str(tmp_path / "p"))
    assert code == 3
    assert stderr.startswith(f"Error: {path}, line ")
    assert "feeds[0].sector: unknown sector 'oil'" in stderr
    assert "\nHint: Use one of the configured sector slugs" in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]  # no database, no preview


def test_missing_config_file_exits_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, stderr = run("collect")
    assert code == 3
    assert "Error: config.yaml: config file not found" in stderr
    assert "Hint: Start a publication with `newsletter init FOLDER`" in stderr
    assert "--config examples/demo" not in stderr  # no demo here to try
    assert list(tmp_path.iterdir()) == []


def test_config_from_environment_variable(demo_dir: Path) -> None:
    code, stdout, _ = run("collect", env={"NEWSLETTER_CONFIG": str(demo_dir / "config.yaml")})
    assert code == 0 and "Charge Lane: 4 new, 4 in feed" in stdout


def test_collect_over_http_reports_each_failure_by_name(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    good = (ROOT / "examples/demo/feeds/charge-lane.xml").read_bytes()
    feeds = [
        {"name": "Good Feed", "url": feed_server.add("/good.xml", good)},
        {"name": "Gone Feed", "url": feed_server.url("/gone.xml")},
        {
            "name": "Not XML",
            "url": feed_server.add("/x", "hello, world", headers={"Content-Type": "text/plain"}),
        },
        {"name": "Slow Feed", "url": feed_server.add("/slow.xml", good, delay=3.0)},
    ]
    path = write_config(tmp_path, {"feeds": feeds, "collect": {"timeout_seconds": 0.5}})
    code, stdout, _ = run("--config", str(path), "collect")
    assert code == 0
    host = feed_server.url("/").split("/")[2]  # a failing web feed is named with its host
    assert "ok     Good Feed: 4 new, 4 in feed" in stdout
    assert f"failed Gone Feed ({host}): HTTP 404 Not Found" in stdout
    assert f"failed Not XML ({host}): not a readable feed" in stdout
    assert f"failed Slow Feed ({host}): timed out after 0.5 s" in stdout
    assert "4 feeds, 4 new stories, 3 failed" in stdout
    code, stdout, _ = run("--config", str(path), "collect")
    assert "ok     Good Feed: 0 new, 4 in feed" in stdout  # seen again: not duplicated


def test_collect_exits_1_when_every_feed_fails(feed_server: FeedServer, tmp_path: Path) -> None:
    path = write_config(tmp_path, {"feeds": [{"name": "Gone", "url": feed_server.url("/gone")}]})
    code, stdout, stderr = run("--config", str(path), "collect")
    assert code == 1
    assert f"failed Gone ({feed_server.url('/').split('/')[2]}): HTTP 404 Not Found" in stdout
    assert "Error: none of the 1 feeds could be collected" in stderr


COMMANDS = [
    "collect",
    "stories",
    "preview",
    "review",
    "status",
    "init",
    "send",
    "subscribers",
    "serve",
    "run",
    "rules",
    "stats",
    "bounces",
    "embed",
    "db",
    "editors",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_and_is_in_the_readme(command: str) -> None:
    code, stdout, _ = run(command, "--help")
    assert code == 0 and "Example:" in stdout
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"`newsletter {command}" in readme or f"newsletter {command}" in readme


def test_readme_lists_every_command() -> None:
    context = click.Context(cli)
    assert cli.list_commands(context) == sorted(COMMANDS)
    for name in COMMANDS:  # each loads on demand, as the command it names
        command = cli.get_command(context, name)
        assert command is not None and command.name == name


def test_bad_now_override_is_a_clear_error(demo_dir: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        cli,
        ["--config", str(demo_dir / "config.yaml"), "collect"],
        env={"NEWSLETTER_NOW": "tomorrow"},
    )
    assert result.exit_code == 3
    assert "Error: NEWSLETTER_NOW: 'tomorrow' is not an ISO 8601 date and time" in result.stderr


def test_status_shows_each_feeds_health(feed_server: FeedServer, tmp_path: Path) -> None:
    good = (ROOT / "examples/demo/feeds/charge-lane.xml").read_bytes()
    feeds = [
        {"name": "Healthy", "url": feed_server.add("/good.xml", good)},
        {"name": "Broken", "url": feed_server.url("/missing.xml")},
        {
            "name": "Moved",
            "url": feed_server.add("/old", status=301, headers={"Location": "/new.xml"}),
        },
        {"name": "Removed", "url": feed_server.add("/gone", status=410)},
        {"name": "Never", "url": "https://never.example.com/feed"},
    ]
    feed_server.add("/new.xml", good.replace(b"chargelane", b"moved"))
    path = write_config(tmp_path, {"feeds": feeds[:4]})
    days_ago = "2026-11-21T06:00:00+00:00"
    first = CliRunner().invoke(
        cli, ["--config", str(path), "collect"], env={"NEWSLETTER_NOW": days_ago}
    )
    assert "moved permanently to " + feed_server.url("/new.xml") in first.stdout
    host = feed_server.url("/").split("/")[2]
    assert f"gone   Removed ({host}): HTTP 410 Gone: the feed was removed" in first.stdout
    code, stdout, _ = run("--config", str(path), "collect")
    assert f"gone   Removed ({host}): skipped: the server said 410 Gone" in stdout
    path = write_config(tmp_path, {"feeds": feeds})
    code, stdout, _ = run("--config", str(path), "status", env={"COLUMNS": "200"})
    assert code == 0
    lines = stdout.splitlines()
    rows = {re.split(r"\s{2,}", line)[0]: line for line in lines}  # the feeds' table
    notes = dict(line.split(": ", 1) for line in lines if ": " in line)  # a note under it
    assert FetchOutcome.OK in rows["Healthy"] and "4 days ago" not in rows["Healthy"]
    assert "FAILING 4 days" in rows["Broken"] and "HTTP 404" in notes["Broken"]
    assert (
        notes["Moved"] == f"moved permanently to {feed_server.url('/new.xml')}: update the config"
    )
    assert FeedStatus.GONE in rows["Removed"]
    assert "never" in rows["Never"] and notes["Never"] == "not fetched yet"
    assert "failing" not in rows["Healthy"] and "Healthy" not in notes
    assert "1 feed failing for more than 48 hours" in stdout


def test_editor_overrides_show_in_preview(demo_dir: Path, tmp_path: Path) -> None:
    config = str(demo_dir / "config.yaml")
    run("--config", config, "collect")
    _, stdout, _ = run("--config", config, "stories", "--json")
    ids = {item["title"]: item["id"] for item in json.loads(stdout)}
    overrides = demo_dir / "overrides" / "2026-11-25.yaml"
    overrides.parent.mkdir()
    overrides.write_text(
        "note: Markets in the US are closed for Thanksgiving on Thursday.\n"
        f"pin: [{ids['Steelmaker idles a blast furnace as demand softens']}]\n"
        "drop: [https://gridgreen.example.com/news/offshore-wind-auction-42gw]\n"
        "drop_feeds: [Hangar & Harbor]\n",
        encoding="utf-8",
    )
    out = tmp_path / "p"
    code, stdout, _ = run("--config", config, "preview", "--no-collect", "--out", str(out))
    assert code == 0 and f"Editor's overrides: {overrides}" in stdout
    text = (out / "digest.txt").read_text(encoding="utf-8")
    html = (out / "digest.html").read_text(encoding="utf-8")
    assert "From the editor:\n  Markets in the US are closed for Thanksgiving" in text
    assert "Markets in the US are closed for Thanksgiving on Thursday." in html
    brief = text.split("== Today's brief ==")[1].split("In this edition")[0]
    assert brief.index("Steelmaker idles") < brief.index("Copper hits 18-month high")
    assert "Offshore wind auction" not in text and "Offshore wind auction" not in html
    assert "Aerospace & Defense" not in text and "Hangar & Harbor" not in text


def test_overrides_that_match_nothing_are_named(demo_dir: Path, tmp_path: Path) -> None:
    config = str(demo_dir / "config.yaml")
    run("--config", config, "collect")
    _, stdout, _ = run("--config", config, "stories", "--json")
    real = json.loads(stdout)[0]["id"]
    overrides = demo_dir / "overrides" / "2026-11-25.yaml"
    overrides.parent.mkdir()
    overrides.write_text(
        f"pin: [{real}, doesnotexist123]\n"
        "drop: [https://nowhere.example.com/story]\n"
        "drop_feeds: [No Such Feed, hangar & harbor]\n"
        "move: {nosuchid99: oil-gas}\n"
        "notes: {gone42: Why it matters}\n",
        encoding="utf-8",
    )
    code, stdout, _ = run("--config", config, "preview", "--no-collect", "--out", str(tmp_path))
    assert code == 0, stdout
    flat = " ".join(stdout.split())
    for line in (
        "pin: 'doesnotexist123' matches no story",
        "drop: 'https://nowhere.example.com/story' matches no story",
        "drop_feeds: 'No Such Feed' is not a configured feed",
        "move: 'nosuchid99' matches no story",
        "notes: 'gone42' matches no story",
    ):
        assert line in flat
    assert repr(real) not in flat and "'hangar & harbor'" not in flat  # these match
    code, stdout, _ = run("--config", config, "review")
    assert code == 0 and "pin: 'doesnotexist123' matches no story" in " ".join(stdout.split())
    code, stdout, _ = run("--config", config, "review", "--json")
    assert code == 0 and len(json.loads(stdout)["unmatched"]) == 5


def test_a_note_on_a_story_outside_the_brief_is_named(demo_dir: Path, tmp_path: Path) -> None:
    """A "why it matters" line shows under a story of the brief only: on another it did
    nothing, and nothing said so."""
    config = str(demo_dir / "config.yaml")
    run("--config", config, "collect")
    code, stdout, _ = run("--config", config, "review", "--json")
    shown = json.loads(stdout)["shown"]
    lead = next(s["id"] for s in shown if s["place"] == "lead")
    top = next(s["id"] for s in shown if s["place"] == "brief")
    overrides = demo_dir / "overrides" / "2026-11-25.yaml"
    overrides.parent.mkdir()
    overrides.write_text(f"notes: {{{lead}: Recalls are piling up, {top}: Supply tightens}}\n")
    code, stdout, _ = run("--config", config, "review", "--json")
    said = json.loads(stdout)["unmatched"]
    assert code == 0 and len(said) == 1, said
    assert said[0].startswith(f"notes: {lead!r} is not in the brief") and "pin it" in said[0]
    code, stdout, _ = run("--config", config, "preview", "--no-collect", "--out", str(tmp_path))
    assert f"notes: {lead!r} is not in the brief" in " ".join(stdout.split())
    assert "Supply tightens" in (tmp_path / "digest.txt").read_text(encoding="utf-8")


def test_bad_overrides_file_names_the_file(demo_dir: Path, tmp_path: Path) -> None:
    overrides = demo_dir / "overrides" / "2026-11-25.yaml"
    overrides.parent.mkdir()
    overrides.write_text("pin: [abc]\npinned: [oops]\n", encoding="utf-8")
    code, _, stderr = run(
        "--config", str(demo_dir / "config.yaml"), "preview", "--out", str(tmp_path / "p")
    )
    assert code == 3
    assert (
        f"Error: {overrides}, line 2: pinned: unknown key 'pinned'; did you mean 'pin'?" in stderr
    )
    assert "Known keys at the top: note, pin, drop, drop_feeds" in stderr
    assert not (tmp_path / "p").exists()


def test_preview_says_why_there_is_no_edition(tmp_path: Path) -> None:
    feed = tmp_path / "sport.xml"
    feed.write_text(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item>'
        "<title>Local team wins the cup final</title><link>https://s.example.com/1</link>"
        "<pubDate>Wed, 25 Nov 2026 04:00:00 +0000</pubDate></item></channel></rss>",
        encoding="utf-8",
    )
    path = write_config(tmp_path, {"feeds": [{"name": "Sport", "url": str(feed)}]})
    code, _, stderr = run("--config", str(path), "preview", "--out", str(tmp_path / "p"))
    assert code == 5  # nothing to send today
    assert "Error: no edition for 2026-11-25: no story from the last 36 hours fits any" in stderr
    assert "Hint: Nothing was written." in stderr
    assert not (tmp_path / "p").exists()


def test_init_starts_a_publication_that_previews(tmp_path: Path) -> None:
    folder = tmp_path / "briefing"
    code, stdout, _ = run("init", str(folder))
    assert code == 0 and f"Wrote {folder / 'config.yaml'}" in stdout
    assert (folder / "templates" / "digest.mjml.j2").is_file()
    assert (folder / "templates" / "digest.txt.j2").is_file()
    config = load_config(folder / "config.yaml")
    assert config.templates_dir == (folder / "templates").resolve()
    assert config.sector_slugs[0] == "evs-battery" and len(config.feeds) > 10
    code, _, stderr = run("init", str(folder))
    assert code == 3 and "already exists; nothing was written" in stderr


def test_template_error_in_preview_names_the_file_and_line(demo_dir: Path, tmp_path: Path) -> None:
    templates = demo_dir / "mytemplates"
    templates.mkdir()
    (templates / "digest.txt.j2").write_text(
        "{{ publication }}\n{% for s in sections %}\n{{ s.sector.nme.upper() }}\n{% endfor %}\n",
        encoding="utf-8",
    )
    config = demo_dir / "config.yaml"
    config.write_text(
        config.read_text(encoding="utf-8") + "\ntemplates: mytemplates\n", encoding="utf-8"
    )
    code, _, stderr = run("--config", str(config), "preview", "--out", str(tmp_path / "p"))
    assert code == 1
    assert f"Error: {templates / 'digest.txt.j2'}, line 3:" in stderr and "nme" in stderr
    assert "Hint:" in stderr
    assert not (tmp_path / "p").exists()


def test_mjml_error_in_preview_names_the_file_and_line(demo_dir: Path, tmp_path: Path) -> None:
    templates = demo_dir / "mytemplates"
    templates.mkdir()
    (templates / "digest.mjml.j2").write_text(
        "<mjml>\n<mj-body>\n{% for section in sections %}\n<mj-section>\n<mj-column>\n"
        "<mj-text>{{ section.sector.name }}</mj-text>\n</mj-section>\n{% endfor %}\n"
        "</mj-body>\n</mjml>\n",
        encoding="utf-8",
    )
    config = demo_dir / "config.yaml"
    config.write_text(
        config.read_text(encoding="utf-8") + "\ntemplates: mytemplates\n", encoding="utf-8"
    )
    code, _, stderr = run("--config", str(config), "preview", "--out", str(tmp_path / "p"))
    assert code == 1
    assert (
        f"Error: {templates / 'digest.mjml.j2'}, line 5: the rendered MJML is not valid" in stderr
    )
    assert "Hint: Check that every mj-* tag" in stderr


def _rules_check(
    demo_dir: Path, labelled: Path, lines: list[str], *extra: str
) -> tuple[int, str, str]:
    """``rules check`` of a file of these lines."""
    labelled.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return run("--config", str(demo_dir / "config.yaml"), "rules", "check", str(labelled), *extra)


def test_rules_check_scores_a_labelled_file_and_names_a_bad_line(
    demo_dir: Path, tmp_path: Path
) -> None:
    labelled = tmp_path / "labelled.jsonl"
    rows = [
        {"title": "Brent crude jumps as OPEC cuts output", "primary": "oil-gas"},
        {"title": "Tennis star wins the final in straight sets", "primary": "none"},
        {"title": "Regulator fines a bank over money laundering", "primary": "business-politics"},
    ]
    code, stdout, _ = _rules_check(demo_dir, labelled, [json.dumps(r) for r in rows])
    assert code == 0
    assert "macro-F1" in stdout and "off-topic stories left out: 1.000" in stdout
    assert "business-politics → sanctions-regulation: 1" in stdout  # the confusion is named
    lines = ['{"title": "x", "primary": "oil-gas"}', '{"title": 3}']
    code, _, stderr = _rules_check(demo_dir, labelled, lines)
    assert code == 1 and "line 2" in stderr


def test_rules_check_averages_only_the_sectors_the_file_holds(
    demo_dir: Path, tmp_path: Path
) -> None:
    rows = [
        {"title": "Brent crude jumps as OPEC cuts output", "primary": "oil-gas"},
        {"title": "Lithium battery cell maker opens EV gigafactory", "primary": "evs-battery"},
    ]
    lines = [json.dumps(r) for r in rows]
    code, stdout, _ = _rules_check(demo_dir, tmp_path / "two.jsonl", lines, "--errors")
    assert code == 0, stdout
    assert "top-1: 1.000" in stdout
    assert "macro-F1: 1.000 (over the 2 sectors the file or the rules name)" in stdout
    mining = next(line for line in stdout.splitlines() if "mining-metals" in line)
    assert "n/a" in mining  # neither labelled nor given: no score, not a zero
    assert "misses" not in stdout  # no heading over nothing


def test_rules_check_names_every_bad_line_and_what_is_wrong(demo_dir: Path, tmp_path: Path) -> None:
    lines = [
        '{"title": "Brent jumps", "primary": "oil-gas"}',
        '{"title": "No label here"}',
        '{"title": "A string", "primary": "oil-gas", "secondary": "rare-earths-commodities"}',
        "not json",
    ]
    code, _, stderr = _rules_check(demo_dir, tmp_path / "bad.jsonl", lines)
    flat = " ".join(stderr.split())
    assert code == 1
    assert "line 2: the key 'primary' is missing" in flat
    assert "line 3: 'secondary' must be a list of sector slugs" in flat
    assert "line 4: not JSON" in flat


def test_stories_explain_names_the_matched_phrases(demo_dir: Path) -> None:
    config = str(demo_dir / "config.yaml")
    assert run("--config", config, "collect")[0] in (0, 1)
    code, stdout, _ = run("--config", config, "stories", "--json")
    story = next(s for s in json.loads(stdout) if "Brent" in s["title"])
    code, stdout, _ = run("--config", config, "stories", "--explain", story["id"])
    assert code == 0 and "oil-gas" in stdout and "brent" in stdout and "title" in stdout
    code, _, stderr = run("--config", config, "stories", "--explain", "nope")
    assert code == 1 and "no stored story" in stderr


def test_preview_counts_what_the_email_holds_after_trimming(demo_dir: Path) -> None:
    config = demo_dir / "config.yaml"
    config.write_text(
        config.read_text(encoding="utf-8") + "\nemail: {max_kb: 30, more_headlines: 40}\n",
        encoding="utf-8",
    )
    code, stdout, _ = run("--config", str(config), "preview", "--out", str(demo_dir / "p"))
    assert code == 0 and "Trimmed" in stdout, stdout
    printed = {
        m["name"]: (int(m["n"]), int(m["more"] or 0))
        for m in re.finditer(
            r"^  (?P<name>[^:\n]+): (?P<n>\d+) stor(?:y|ies)(?: \(\+(?P<more>\d+) more\))?$",
            stdout,
            re.M,
        )
    }
    text = (demo_dir / "p" / "digest.txt").read_text(encoding="utf-8")
    in_text: dict[str, list[int]] = {}
    heading = ""
    for line in text.splitlines():
        if line.startswith("== ") and line.endswith(" =="):
            heading = line[3:-3] if line != "== Sponsored ==" else ""
        elif line.startswith("* ") and heading:
            in_text.setdefault(heading, [0, 0])[0] += 1
    more = re.findall(r"^- ", text, re.M)  # one line starts each "Read more insights" headline
    assert {k: n for k, (n, _) in printed.items()} == {k: v[0] for k, v in in_text.items()}
    assert sum(m for _, m in printed.values()) == len(more)


def test_db_current_and_upgrade_for_operators(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"feeds": []})
    # the newest migration file's revision, as the folder has it
    versions = ROOT / "newsletter" / "store" / "migrations" / "versions"
    newest = max(p.name.partition("_")[0] for p in versions.glob("0*.py"))
    code, before, _ = run("--config", str(config), "db", "current")
    assert code == 0 and f"revision none; the newest is {newest}: run `newsletter db upgrade`" in (
        before
    )
    code, upgraded, _ = run("--config", str(config), "db", "upgrade")
    assert code == 0 and f"The schema is at revision {newest} (the newest)." in upgraded
    code, after, _ = run("--config", str(config), "db", "current")
    assert code == 0 and f"revision {newest} (the newest)" in after


def test_each_family_of_error_exits_with_its_own_code(tmp_path: Path, demo_dir: Path) -> None:
    """A cron job can tell them apart: 2 usage, 3 configuration, 4 database or file system,
    5 nothing to send today (``errors.py``; 1, failures to retry: tests/test_send.py)."""
    demo = str(demo_dir / "config.yaml")
    code, _, stderr = run("--config", demo, "send", "--no-such-option")
    assert code == 2 and "No such option" in stderr
    code, _, stderr = run("--config", str(tmp_path / "missing.yaml"), "status")
    assert code == 3 and "config file not found" in stderr
    broken = {"NEWSLETTER_DATABASE_URL": "sqlite:////dev/null/newsletter.db"}
    code, _, stderr = run("--config", demo, "status", env=broken)
    assert code == 4 and "Error: cannot use /dev/null" in stderr
    off_topic = write_config(tmp_path / "empty", {"feeds": []})
    code, _, stderr = run("--config", str(off_topic), "send", "--no-collect")
    assert code == 5 and "Error: no edition for" in stderr


@pytest.mark.parametrize("command", [["serve"], ["preview", "--no-collect", "--serve"]])
def test_a_busy_port_is_an_error_that_says_what_to_do(demo_dir: Path, command: list[str]) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        code, stdout, stderr = run(
            "--config", str(demo_dir / "config.yaml"), *command, "--port", str(port)
        )
    assert code == 1
    assert f"Error: 127.0.0.1:{port} is already in use" in stderr
    assert "--port" in stderr.split("Hint:")[1]
    assert "Serving" not in stdout and "Live preview at" not in stdout  # never said it served


@pytest.mark.parametrize("command", [["serve"], ["preview", "--no-collect", "--serve"]])
@pytest.mark.parametrize("port", ["99999", "-1"])
def test_a_port_out_of_range_is_a_usage_error(
    demo_dir: Path, command: list[str], port: str
) -> None:
    code, stdout, stderr = run("--config", str(demo_dir / "config.yaml"), *command, "--port", port)
    assert code == 2 and "Traceback" not in stderr, stderr
    assert "--port" in stderr and "0<=x<=65535" in stderr
    assert "Serving" not in stdout and "Live preview at" not in stdout


def test_serve_on_another_port_than_the_base_url_says_where_links_point(demo_dir: Path) -> None:
    """The demo's base_url is http://localhost:8000: served on another port, its pages' logo
    and links (and the emails') point where nothing answers, so `serve` says so at once."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    config = str(demo_dir / "config.yaml")
    process = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "--config", config, "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        while not lines or ("Serving" not in lines[-1] and lines[-1] and len(lines) < 20):
            lines.append(process.stdout.readline())  # up to "Serving", or the end
    finally:
        process.terminate()
        process.communicate(timeout=60)
    said = " ".join(" ".join(lines).split())
    assert f"Serving Top Insights Today on http://127.0.0.1:{port}/subscribe" in said
    assert "publication.base_url is http://localhost:8000" in said
    assert f"set it to http://127.0.0.1:{port}" in said


def test_a_move_gives_a_story_the_rules_left_out_its_sector(demo_dir: Path, tmp_path: Path) -> None:
    """The chef's restaurant fits no sector; moved to Business & Politics it is shown there (it
    did nothing, silently). A pin alone cannot place such a story: review says so."""
    config = str(demo_dir / "config.yaml")
    run("--config", config, "collect")
    _, stdout, _ = run("--config", config, "stories", "--json")
    outside = [s for s in json.loads(stdout) if not s["sectors"]]
    chef = next(s for s in outside if s["title"].startswith("Celebrity chef"))
    other = next(s for s in outside if s is not chef)
    overrides = demo_dir / "overrides" / "2026-11-25.yaml"
    overrides.parent.mkdir()
    overrides.write_text(
        f"move: {{{chef['id']}: business-politics}}\npin: [{other['id']}]\n", encoding="utf-8"
    )
    code, stdout, _ = run("--config", config, "review", "--json")
    assert code == 0, stdout
    shown = json.loads(stdout)
    placed = {s["title"]: s["section"] for s in shown["shown"]}
    assert placed.get(chef["title"]) == "Business & Politics"
    said = " ".join(" ".join(shown["unmatched"]).split())
    assert f"pin: '{other['id']}' is a story the rules gave no sector" in said


def test_serve_with_a_broken_webhook_key_never_says_it_serves(demo_dir: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["--config", str(demo_dir / "config.yaml"), "serve", "--port", "0"],
        env={"SENDGRID_WEBHOOK_KEY": "not a key"},
    )
    assert result.exit_code == 3 and "webhook verification key cannot be read" in result.output
    assert "Serving" not in result.output
