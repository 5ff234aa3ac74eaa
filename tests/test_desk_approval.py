"""The scheduled send and the desk's approval (``schedule.require_approval``), driven through
the scheduler's ``Runner`` with an injected clock: it waits until the deadline, sends as soon
as an editor approves, and at the deadline sends or skips as configured, saying so in the log
and in ``status``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.config import Config
from newsletter.config.dayedits import NO_FILE, Change, Part, approve_day, day_path, edit_day
from newsletter.schedule.runner import Runner
from tests.test_scheduler import READERS, _Clock, _config, _outbox, _runner

DUE = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
PASS = timedelta(seconds=15)  # between the scheduler's passes


def _passes(
    runner: Runner,
    clock: _Clock,
    until: datetime,
    on_pass: Callable[[datetime], None] = lambda at: None,
) -> int:
    """The scheduler's passes from the clock's time to ``until`` (``on_pass`` first at each);
    returns how many readers they sent to. No pass waits: each returns at once."""
    sent = 0
    while clock.at <= until:
        on_pass(clock.at)
        sent += sum(report.sent for report in runner.send())
        clock.at += PASS
    return sent


def _approval(tmp_path: Path, on_timeout: str) -> Config:
    return _config(
        tmp_path,
        DUE,
        require_approval={"deadline": "07:30", "on_timeout": on_timeout},  # type: ignore[arg-type]
    )


def test_without_an_approval_the_send_waits_until_the_deadline_then_skips(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = _approval(tmp_path, "skip")
    clock = _Clock(DUE)
    runner = _runner(config, clock)
    with caplog.at_level("INFO", logger="newsletter.run"):
        assert _passes(runner, clock, DUE + timedelta(minutes=29, seconds=59)) == 0
        assert "waiting for an editor's approval until 07:30 (UTC), then skip" in caplog.text
        assert "not approved" not in caplog.text
        assert _passes(runner, clock, DUE + timedelta(hours=2)) == 0
    assert _outbox(config) == []
    assert caplog.text.count("waiting for an editor's approval") == 1  # said once
    assert caplog.text.count("not approved by 07:30 (UTC): not sent (on_timeout: skip)") == 1
    assert f"newsletter --config {config.path} send" in caplog.text


def test_an_approval_while_it_waits_sends_at_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = _approval(tmp_path, "skip")
    clock = _Clock(DUE)
    approve_at = DUE + timedelta(minutes=10)
    sent_at: list[datetime] = []

    def editor(at: datetime) -> None:
        if at >= approve_at and not day_path(config, at.date()).exists():
            approve_day(config, at.date(), by="ann@example.com", at=at, seen=NO_FILE)
        if _outbox(config) and not sent_at:
            sent_at.append(at)

    runner = _runner(config, clock)
    with caplog.at_level("INFO", logger="newsletter.run"):
        assert _passes(runner, clock, DUE + timedelta(minutes=40), editor) == READERS
    assert len(_outbox(config)) == READERS
    assert sent_at == [approve_at + PASS]  # at the first pass after it
    assert "approved by ann@example.com at 07:10" in caplog.text


def test_a_change_after_the_approval_withdraws_it(tmp_path: Path) -> None:
    config = _approval(tmp_path, "skip")
    day = DUE.date()
    approved = approve_day(config, day, by="ann@example.com", at=DUE, seen=NO_FILE)
    edit_day(config, day, Change(Part.SUBJECT, "Changed", ""), seen=approved.version)
    clock = _Clock(DUE)
    assert _passes(_runner(config, clock), clock, DUE + timedelta(minutes=45)) == 0
    assert _outbox(config) == []


def test_on_timeout_send_sends_at_the_deadline_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = _approval(tmp_path, "send")
    clock = _Clock(DUE)
    runner = _runner(config, clock)
    with caplog.at_level("INFO", logger="newsletter.run"):
        assert _passes(runner, clock, DUE + timedelta(minutes=29, seconds=59)) == 0
        assert _passes(runner, clock, DUE + timedelta(minutes=30)) == READERS
    assert len(_outbox(config)) == READERS
    assert "sent without an approval (on_timeout: send)" in caplog.text


def test_without_the_setting_the_send_goes_at_once(tmp_path: Path) -> None:
    config = _config(tmp_path, DUE)
    clock = _Clock(DUE)
    assert _passes(_runner(config, clock), clock, DUE) == READERS


def test_status_says_where_the_approval_stands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _approval(tmp_path, "skip")
    monkeypatch.setenv("NEWSLETTER_NOW", "2026-11-25T07:05:00Z")
    run = CliRunner().invoke(cli, ["--config", str(config.path), "status"])
    assert "waiting for an editor's approval until 07:30 (UTC), then skip" in run.output
    approve_day(config, DUE.date(), by="ann@example.com", at=DUE, seen=NO_FILE)
    run = CliRunner().invoke(cli, ["--config", str(config.path), "status"])
    assert "approved by ann@example.com at 07:00" in run.output
    monkeypatch.setenv("NEWSLETTER_NOW", "2026-11-25T08:00:00Z")
    edit_day(config, DUE.date(), Change(Part.NOTE, "x", ""), seen=NO_FILE)
    run = CliRunner().invoke(cli, ["--config", str(config.path), "status"])
    assert "not approved by 07:30 (UTC): not sent (on_timeout: skip)" in run.output


def test_send_due_says_it_waits_for_the_approval_and_a_skipped_day_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`send --due` at the hour says the day waits for an editor (not "Nothing due"); the next
    day, a day without an approval is said to have had none, not only to have been missed."""
    config = _approval(tmp_path, "skip")
    args = ["--config", str(config.path), "send", "--due", "--no-collect"]

    def due(at: datetime) -> str:
        result = CliRunner().invoke(cli, args, env={"NEWSLETTER_NOW": at.isoformat()})
        assert result.exit_code == 0, result.output
        return " ".join(result.output.split())

    waiting = due(DUE + timedelta(seconds=5))
    assert "waiting for an editor's approval until 07:30 (UTC)" in waiting
    assert "Nothing due" not in waiting
    with caplog.at_level("WARNING", logger="newsletter.run"):
        due(DUE + timedelta(days=1, minutes=10))
    said = " ".join(caplog.text.split())
    assert "the daily edition of 2026-11-25 was due from 2026-11-25 07:00 UTC" in said
    assert "had no editor's approval by its deadline (on_timeout: skip)" in said
    assert _outbox(config) == []


def test_status_lists_the_readers_whose_hour_came_while_the_edition_waits_for_approval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 07:05 the 07:00 readers have had nothing: `status` lists their bucket as waiting for
    the approval, not as gone (it was left out of the buckets still to send)."""
    config = _approval(tmp_path, "skip")
    monkeypatch.setenv("NEWSLETTER_NOW", "2026-11-25T07:05:00Z")
    monkeypatch.setenv("COLUMNS", "100")
    out = CliRunner().invoke(cli, ["--config", str(config.path), "status"]).output
    assert "Buckets still to send" in out
    assert "2026-11-25 07:00" in out
    said = " ".join(out.split())
    assert f"{READERS} readers due since 07:00 UTC wait for the daily edition of 2026-11-25" in said
    assert "waiting for an editor's approval until 07:30 (UTC), then skip" in said


def test_after_a_skipped_deadline_an_approval_is_refused_and_sends_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """on_timeout: skip means nothing goes that day: the desk refuses a late approval, saying
    how to send anyway; one written into the file by hand sends nothing either; and `send
    --due` does not also say that nothing was due."""
    from newsletter.errors import EditionError
    from newsletter.flows import desk
    from newsletter.store import Store

    config = _approval(tmp_path, "skip")
    late = DUE + timedelta(minutes=40)
    store = Store.open(config.database_url)
    with pytest.raises(EditionError, match="07:30 \\(UTC\\), passed without an approval") as e:
        desk.approve_today(config, store, by="ann@example.com", seen=NO_FILE, now=late)
    assert e.value.hint is not None and "send" in e.value.hint
    store.close()
    assert not day_path(config, DUE.date()).exists()
    approve_day(config, DUE.date(), by="ann@example.com", at=late, seen=NO_FILE)  # by hand
    assert desk.gate(config, DUE.date(), late).state is desk.Waiting.TIMED_OUT
    clock = _Clock(late)
    assert _passes(_runner(config, clock), clock, late + timedelta(minutes=5)) == 0
    assert _outbox(config) == []
    args = ["--config", str(config.path), "send", "--due", "--no-collect"]
    result = CliRunner().invoke(cli, args, env={"NEWSLETTER_NOW": late.isoformat()})
    assert result.exit_code == 0 and "Nothing due" not in result.stdout, result.output


def test_a_send_from_the_shell_says_it_goes_without_the_approval(tmp_path: Path) -> None:
    """`newsletter send` is the operator's own decision: it does not wait, but says that the
    scheduled send would have (and, approved, says nothing of it)."""
    config = _approval(tmp_path, "skip")
    args = ["--config", str(config.path), "send"]
    at = {"NEWSLETTER_NOW": (DUE + timedelta(minutes=5)).isoformat()}
    dry = CliRunner().invoke(cli, [*args, "--dry-run"], env=at)
    assert dry.exit_code == 0, dry.output
    assert "has no editor's approval" in " ".join(dry.output.split())
    approve_day(config, DUE.date(), by="ann@example.com", at=DUE, seen=NO_FILE)
    sent = CliRunner().invoke(cli, args, env=at)
    assert sent.exit_code == 0 and "approval" not in sent.output, sent.output
