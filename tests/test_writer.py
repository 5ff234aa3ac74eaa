"""The optional writer against a local OpenAI-compatible stand-in (``tests/writer_server.py``),
through the real ``openai`` client, the real store and the real build: what it writes and the
check accepts goes into the brief; made-up figures and names, a hanging, failing or
rate-limiting endpoint, and spent budgets all leave the extractive summaries, and the edition
goes out regardless."""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from newsletter import flows
from newsletter.cli import cli
from newsletter.config import Config, load_config
from newsletter.delivery.mailers import make_mailer
from newsletter.edition import brief, digest
from newsletter.flows.build import build
from newsletter.flows.write import write_brief
from newsletter.models import Edition, EditionStatus
from newsletter.readers.subscriptions import add_subscriber
from newsletter.schedule.runner import Runner
from newsletter.store import Store
from newsletter.writer.grounding import cleaned, problem
from newsletter.writer.prompt import summary_request
from tests.conftest import DEMO, NOW, ROOT, write_config
from tests.writer_server import (
    MADE_UP_NAME,
    MADE_UP_NUMBER,
    Mode,
    WriterServer,
    good_answer,
    writer_server,
)

KEY_ENV = "NEWSLETTER_WRITER_API_KEY"
WRITER_LOG = "newsletter.flows.write"


@pytest.fixture
def server() -> Iterator[WriterServer]:
    with writer_server() as s:
        yield s


@pytest.fixture
def feeds(tmp_path: Path) -> Path:
    """The demo's feed files, in a folder of the test's own (a test may edit them)."""
    folder = tmp_path / "feeds"
    shutil.copytree(DEMO / "feeds", folder)
    (folder / "northwind-commodities.xml").unlink()  # the demo's broken feed
    return folder


def make_config(tmp_path: Path, feeds: Path, base_url: str, **writer: object) -> Config:
    settings = {"base_url": base_url, "timeout_seconds": 30, "budget_seconds": 120, **writer}
    data: dict[str, object] = {
        "feeds": [{"name": p.stem, "url": str(p)} for p in sorted(feeds.glob("*.xml"))],
        "delivery": {"preflight": False},
        "writer": settings,
    }
    return load_config(write_config(tmp_path / "site", data))


def collected(config: Config) -> Store:
    store = Store.open(config.database_url)
    flows.collect_all(config, store, now=NOW)
    return store


def built(config: Config, store: Store) -> Edition:
    edition = build(config, store, now=NOW).edition
    assert edition is not None
    return edition


def extractive(edition: Edition) -> Edition:
    return dataclasses.replace(edition, written=(), intro="", intro_covers=())


def writer_lines(caplog: pytest.LogCaptureFixture, level: int = logging.WARNING) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == WRITER_LOG and r.levelno >= level]


def test_grounded_summaries_and_the_intro_land_in_the_brief(
    tmp_path: Path, feeds: Path, server: WriterServer
) -> None:
    config = make_config(tmp_path, feeds, server.url, max_storylines=4, model="local-model")
    store = collected(config)
    edition = built(config, store)

    top = brief.candidates(edition)[:4]
    written = dict(edition.written)
    assert list(written) == [s.id for s in top]
    for story, received in zip(top, [*server.received[:3], server.received[4]], strict=True):
        assert received.body["model"] == "local-model"
        assert story.title in received.user and story.source in received.user
        assert written[story.id] == good_answer(received.user)
    assert server.requests == 5  # four summaries and the intro, after the first three
    assert edition.intro == good_answer(server.received[3].user).replace("\n", " ")
    items, _ = brief.pick(edition, digest.layout(edition, ()))
    assert edition.intro_covers == tuple(i.story.id for i in items[:3])  # every-sector brief

    shown = [i for i in items if i.story.id in written]
    assert shown and all(i.written and i.summary == written[i.story.id] for i in shown)


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        (Mode.MADE_UP_NUMBER, f"a number not in the sources: {MADE_UP_NUMBER}"),
        (Mode.MADE_UP_NAME, f"a name not in the sources: {MADE_UP_NAME}"),
        (Mode.CHATTY, "a reply to the request, not the text asked for"),
        (Mode.LONG, "too long ("),
    ],
)
def test_made_up_figures_and_names_are_rejected_and_the_extractive_summary_stays(
    tmp_path: Path,
    feeds: Path,
    server: WriterServer,
    caplog: pytest.LogCaptureFixture,
    mode: Mode,
    reason: str,
) -> None:
    server.mode = mode
    config = make_config(tmp_path, feeds, server.url, max_storylines=3)
    store = collected(config)
    caplog.set_level(logging.INFO, logger=WRITER_LOG)
    edition = built(config, store)

    assert server.requests == 4  # every storyline was asked for, and every answer refused
    assert edition == extractive(edition)
    items, _ = brief.pick(edition, digest.layout(edition, ()))
    assert items and all(not i.written and i.summary == brief.summary_of(i.story) for i in items)
    rejections = [line for line in writer_lines(caplog, logging.INFO) if "was rejected (" in line]
    assert len(rejections) == 4 and all(reason in line for line in rejections)

    # a warning: seen; the rejections counted by kind, whatever their figures
    kind = reason.split(":")[0].split(" (")[0]
    assert any(f"4 rejected ({kind}: 4)" in line for line in writer_lines(caplog))
    server.mode = Mode.GOOD  # a refused request is not asked again (every collect would)
    assert built(config, store).written == () and server.requests == 4


def test_a_hanging_endpoint_costs_at_most_the_budget_and_the_edition_goes_out(
    tmp_path: Path, feeds: Path, server: WriterServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A request may wait 30 s, but the edition's budget is 0.3 s: one request, cut at the
    budget, then the extractive brief; the send asks nothing and delivers."""
    server.mode = Mode.HANG
    config = make_config(tmp_path, feeds, server.url, timeout_seconds=30, budget_seconds=0.3)
    store = collected(config)
    add_subscriber(store, "reader@example.com", known_sectors=config.sector_slugs, now=NOW)
    started = time.monotonic()
    assert built(config, store).written == ()  # a preview's build: it asks, within the budget
    assert time.monotonic() - started < 30  # the request's own timeout never ran out
    assert server.requests == 1
    assert float(server.received[0].headers["x-stainless-read-timeout"]) <= 0.3

    report = flows.send_edition(config, store, make_mailer(config), now=lambda: NOW)
    assert report.sent == 1
    assert server.requests == 1  # the send never waits on the writer
    stored = store.editions.edition(NOW.date())
    assert stored is not None and stored.status is EditionStatus.SENT
    assert stored.edition.written == () and stored.edition.intro == ""
    (line,) = writer_lines(caplog)
    assert "stopped after 1 failed request: no answer within 0.3 s" in line


def test_the_send_takes_what_was_written_ahead_and_asks_nothing(
    tmp_path: Path, feeds: Path, server: WriterServer
) -> None:
    config = make_config(tmp_path, feeds, server.url, max_storylines=3)
    store = collected(config)
    add_subscriber(store, "reader@example.com", known_sectors=config.sector_slugs, now=NOW)
    ahead = built(config, store)  # a preview, or the scheduler after a collect
    asked = server.requests
    assert len(ahead.written) == 3 and asked == 4
    server.mode = Mode.HANG  # the endpoint fails at send time: it is not asked
    report = flows.send_edition(config, store, make_mailer(config), now=lambda: NOW)
    assert report.sent == 1 and server.requests == asked
    stored = store.editions.edition(NOW.date())
    assert stored is not None and stored.edition.written == ahead.written
    assert stored.edition.intro == ahead.intro


def test_the_scheduled_collect_writes_ahead_of_the_send(
    tmp_path: Path, feeds: Path, server: WriterServer
) -> None:
    config = make_config(tmp_path, feeds, server.url, max_storylines=3)
    runner = Runner(
        config,
        open_store=lambda: Store.open(config.database_url),
        make_mailer=lambda: make_mailer(config),
        clock=lambda: NOW,
    )
    runner.collect()
    assert server.requests == 4  # three summaries and the intro, written at collect time
    store = Store.open(config.database_url)
    try:
        assert len(built(config, store).written) == 3 and server.requests == 4  # from the cache
    finally:
        store.close()


def test_the_time_budget_bounds_every_request_and_stops_the_writing(
    tmp_path: Path, feeds: Path, server: WriterServer
) -> None:
    """Each answer takes 10 s of the edition's (injected) clock: with a budget of 25 s and 20 s
    a request, the requests may wait 20, 15 and 5 s, and there is no fourth."""
    seconds = [100.0]
    server.before_answer = lambda: seconds.__setitem__(0, seconds[0] + 10)
    config = make_config(tmp_path, feeds, server.url, timeout_seconds=20, budget_seconds=25)
    store = collected(config)
    edition = extractive(built(dataclasses.replace(config, file=_off(config)), store))

    result = write_brief(config, store.written, edition, now=NOW, clock=lambda: seconds[0])

    timeouts = [float(r.headers["x-stainless-read-timeout"]) for r in server.received]
    assert timeouts == [20, 15, 5]
    assert len(result.written) == 3 and result.intro == ""


def test_the_token_budget_stops_the_writing(tmp_path: Path, feeds: Path) -> None:
    with writer_server(tokens_per_answer=100) as server:
        config = make_config(tmp_path, feeds, server.url, max_tokens=250, max_storylines=5)
        store = collected(config)
        edition = built(config, store)
    assert server.requests == 3  # 300 tokens reported after the third: spent
    assert len(edition.written) == 3 and edition.intro == ""


@pytest.mark.parametrize(
    ("faults", "requests"),
    [
        ([Mode.RATE_LIMITED], 1),  # told to slow down: no retry, whatever Retry-After says
        ([Mode.ERROR, Mode.ERROR], 2),
        ([Mode.MALFORMED, Mode.NO_CHOICES], 2),
    ],
)
def test_errors_and_rate_limits_fall_back_with_one_log_line(
    tmp_path: Path,
    feeds: Path,
    server: WriterServer,
    caplog: pytest.LogCaptureFixture,
    faults: list[Mode],
    requests: int,
) -> None:
    server.script.extend(faults)
    config = make_config(tmp_path, feeds, server.url, max_storylines=4)
    store = collected(config)
    edition = built(config, store)

    assert server.requests == requests
    assert edition == extractive(edition)
    (line,) = writer_lines(caplog)
    assert f"stopped after {requests} failed request" in line
    assert "4 keep their extractive summaries" in line


def test_one_failed_request_does_not_stop_the_others(
    tmp_path: Path, feeds: Path, server: WriterServer
) -> None:
    server.script.append(Mode.ERROR)
    config = make_config(tmp_path, feeds, server.url, max_storylines=3)
    edition = built(config, collected(config))
    first = brief.candidates(edition)[0]
    assert server.requests == 4
    assert [story_id for story_id, _ in edition.written] == [
        s.id for s in brief.candidates(edition)[1:3]
    ]
    assert first.id not in dict(edition.written) and edition.intro


def test_an_endpoint_that_is_not_there_leaves_the_extractive_brief(
    tmp_path: Path, feeds: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with writer_server() as gone:
        url = gone.url
    config = make_config(tmp_path, feeds, url)
    edition = built(config, collected(config))
    assert edition == extractive(edition)
    (line,) = writer_lines(caplog)
    assert "stopped after 1 failed request: cannot reach the endpoint" in line


def test_each_storyline_is_written_once_and_again_when_its_reports_change(
    tmp_path: Path, feeds: Path, server: WriterServer
) -> None:
    config = make_config(tmp_path, feeds, server.url, max_storylines=3)
    store = collected(config)
    first = built(config, store)
    assert server.requests == 4

    again = built(config, store)
    assert server.requests == 4  # all from the cache
    assert again.written == first.written and again.intro == first.intro

    changed = brief.candidates(first)[1]
    path = next(p for p in feeds.glob("*.xml") if changed.title in p.read_text("utf-8"))
    text = path.read_text("utf-8").replace(changed.title, f"{changed.title} again")
    path.write_text(text, encoding="utf-8")
    flows.collect_all(config, store, now=NOW)
    third = built(config, store)
    asked = [r.user for r in server.received[4:]]
    assert len(asked) == 2  # its summary, and the intro that covers it
    assert all(f"{changed.title} again" in user for user in asked)
    assert dict(third.written)[changed.id] != dict(first.written)[changed.id]


def test_the_key_comes_from_the_environment_and_never_reaches_the_log(
    tmp_path: Path, feeds: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    key = "sk-local-0123456789abcdef"
    monkeypatch.setenv(KEY_ENV, key)
    caplog.set_level(logging.DEBUG)
    with writer_server(api_key=key) as server:
        server.script.extend([Mode.GOOD, Mode.ECHO_KEY, Mode.ECHO_KEY])
        config = make_config(tmp_path, feeds, server.url, max_storylines=3)
        edition = built(config, collected(config))
    assert [r.headers["authorization"] for r in server.received] == [f"Bearer {key}"] * 3
    assert len(edition.written) == 1
    assert "stopped after 2 failed requests" in caplog.text and "Bearer [key]" in caplog.text
    assert key not in caplog.text


def test_a_wrong_key_stops_at_the_first_refusal(
    tmp_path: Path, feeds: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-wrong")
    with writer_server(api_key="sk-right") as server:
        config = make_config(tmp_path, feeds, server.url)
        edition = built(config, collected(config))
    assert server.requests == 1 and edition == extractive(edition)
    (line,) = writer_lines(caplog)
    assert "HTTP 401" in line and KEY_ENV in line and "sk-wrong" not in line


def test_preview_shows_the_written_summary(
    tmp_path: Path, feeds: Path, server: WriterServer
) -> None:
    config = make_config(tmp_path, feeds, server.url, max_storylines=3)
    out = tmp_path / "preview"
    result = CliRunner().invoke(
        cli,
        ["--config", str(config.path), "preview", "--out", str(out)],
        env={"NEWSLETTER_NOW": NOW.isoformat()},
    )
    assert result.exit_code == 0, result.output
    html = (out / "digest.html").read_text(encoding="utf-8")
    text = (out / "digest.txt").read_text(encoding="utf-8")
    summary, intro = (good_answer(r.user) for r in server.received[:4:3])
    assert summary.replace("&", "&amp;") in html
    assert " ".join(summary.split()[:6]) in " ".join(text.split())
    assert intro.replace("\n", " ").replace("&", "&amp;") in html  # the reader sees its storylines
    assert " ".join(intro.split()[:6]) in " ".join(text.split())


def test_the_writer_is_off_by_default(tmp_path: Path, feeds: Path) -> None:
    feed_list = [{"name": p.stem, "url": str(p)} for p in sorted(feeds.glob("*.xml"))]
    config = load_config(write_config(tmp_path, {"feeds": feed_list}))
    edition = built(config, collected(config))
    assert config.file.writer.base_url == "" and edition == extractive(edition)
    for shipped in (ROOT / "config.yaml", DEMO / "config.yaml"):
        assert load_config(shipped).file.writer.base_url == ""


def _off(config: Config) -> Any:
    return config.file.model_copy(
        update={"writer": config.file.writer.model_copy(update={"base_url": ""})}
    )


# The check itself, on text: the forms outlets and models write figures in


SOURCES = (
    "Meridian Energy Wire\nNorth Sea operator approves $2.1bn gas field tie-back\n"
    "The development sends gas to Scotland from 2029. Prices on the LME rose 3%. OPEC+ may cut "
    "500,000 barrels a day. Seven projects won. Rio Tinto's chief met Prime Minister Keir "
    "Starmer. The UK and the U.S. agreed. Revenue of US$1,400 million; yields fell 20 per cent."
)


@pytest.mark.parametrize(
    "text",
    [
        "A North Sea operator approved a $2.1 billion tie-back sending gas to Scotland from 2029.",
        "Prices on the LME rose 3 percent, and OPEC+ may cut 500,000 barrels a day.",
        "Revenue was $1.4bn and yields fell 20%, Meridian Energy Wire reported.",
        "Rio Tinto's chief met UK Prime Minister Keir Starmer as the US agreed to 7 projects.",
        "Seven projects won, and one of them sends gas to Scotland from 2029.",
        '"The development sends gas to Scotland," Meridian Energy Wire said.',
    ],
)
def test_grounded_text_passes(text: str) -> None:
    assert problem(cleaned(text), SOURCES, limit=300, lines=1) == ""


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("An operator approved a $2.5 billion tie-back in the North Sea.", "$2.5 billion"),
        ("Prices on the LME rose 4% as a strike went on.", "4%"),
        ("Prices on the LME rose 3 percentage points in the session.", "3 percentage points"),
        ("Revenue was \u20ac1.4bn, Meridian Energy Wire reported.", "\u20ac1.4bn"),
        ("Revenue reached two billion dollars, the operator said.", "two billion dollars"),
        ("Gas flows to Scotland, Exxon Mobil said on the day.", "Exxon Mobil"),
        ("Exxon said gas would flow to Scotland from 2029.", "Exxon"),
        ("Gas flows to Scotland, said Mr. Smith of the operator.", "Smith"),
        ("Gas flows to Scotland from 2029. It said three executives resigned.", "three"),
        ("Gas flows to Scotland from 2029, and a dozen rivals may follow.", "dozen"),
        ("Gas flows to Scotland from 2029 and on", "not whole sentences"),
        ("Gas flows to Scotland.\nIt starts in 2029.", "2 lines"),
        ("- Gas flows to Scotland from 2029.", "not prose"),
        ("Gas flows to [Scotland](https://example.com) from 2029.", "not prose"),
        ("Gas flows.", "too short"),
        ("Gas flows to Scotland from 2029. " * 10, "too long"),
        ("", "empty"),
    ],
)
def test_made_up_or_unusable_text_is_refused(text: str, reason: str) -> None:
    assert reason in problem(cleaned(text), SOURCES, limit=300, lines=1)


def test_bidirectional_controls_are_taken_off_a_written_text() -> None:
    """An override (U+202E) would show the brief backwards: the text is kept, the control not."""
    answer = "\u202eGas flows to Scotland from 2029.\u200f"
    assert cleaned(answer) == "Gas flows to Scotland from 2029."


def test_a_reasoning_models_notes_and_quotes_are_taken_off() -> None:
    answer = '<think>The reports say 2029.</think>\n "Gas flows to Scotland from 2029."  '
    assert cleaned(answer) == "Gas flows to Scotland from 2029."


def test_the_cache_key_follows_the_sources_the_model_and_the_voice(
    tmp_path: Path, feeds: Path
) -> None:
    config = make_config(tmp_path, feeds, "")
    story = brief.candidates(built(config, collected(config)))[0]
    key = summary_request(story, voice="plain", model="m").key
    assert summary_request(story, voice="plain", model="m").key == key
    changed = dataclasses.replace(story, summary=story.summary + " More.")
    assert summary_request(changed, voice="plain", model="m").key != key
    assert summary_request(story, voice="plain", model="n").key != key
    assert summary_request(story, voice="chatty", model="m").key != key
