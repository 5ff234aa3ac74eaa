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


def _waiting(
    config: Config, clock: _Clock, on_wait: Callable[[datetime], None] = lambda at: None
) -> tuple[Runner, list[float]]:
    """A runner whose waits move its clock on (and call ``on_wait`` at each new time)."""
    waits: list[float] = []

    def wait(seconds: float) -> bool:
        waits.append(seconds)
        clock.at += timedelta(seconds=seconds)
        on_wait(clock.at)
        return False

    runner = _runner(config, clock)
    runner.wait = wait
    return runner, waits


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
    runner, waits = _waiting(config, clock)
    with caplog.at_level("INFO", logger="newsletter.run"):
        runner.send()
    assert _outbox(config) == []
    assert clock.at == DUE + timedelta(minutes=30)  # it waited to the deadline, no further
    assert sum(waits) == 30 * 60
    assert "waiting for an editor's approval until 07:30 (UTC), then skip" in caplog.text
    assert "not approved by 07:30 (UTC): not sent (on_timeout: skip)" in caplog.text
    assert f"newsletter --config {config.path} send" in caplog.text


def test_an_approval_while_it_waits_sends_at_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = _approval(tmp_path, "skip")
    clock = _Clock(DUE)
    approve_at = DUE + timedelta(minutes=10)

    def editor(at: datetime) -> None:
        if at >= approve_at and not day_path(config, at.date()).exists():
            approve_day(config, at.date(), by="ann@example.com", at=at, seen=NO_FILE)

    runner, _ = _waiting(config, clock, editor)
    with caplog.at_level("INFO", logger="newsletter.run"):
        runner.send()
    assert len(_outbox(config)) == READERS
    assert approve_at <= clock.at < approve_at + timedelta(seconds=30)  # within a poll
    assert "approved by ann@example.com at 07:10" in caplog.text


def test_a_change_after_the_approval_withdraws_it(tmp_path: Path) -> None:
    config = _approval(tmp_path, "skip")
    day = DUE.date()
    approved = approve_day(config, day, by="ann@example.com", at=DUE, seen=NO_FILE)
    edit_day(config, day, Change(Part.SUBJECT, "Changed", ""), seen=approved.version)
    clock = _Clock(DUE)
    runner, _ = _waiting(config, clock)
    runner.send()
    assert _outbox(config) == [] and clock.at == DUE + timedelta(minutes=30)


def test_on_timeout_send_sends_at_the_deadline_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = _approval(tmp_path, "send")
    clock = _Clock(DUE)
    runner, _ = _waiting(config, clock)
    with caplog.at_level("INFO", logger="newsletter.run"):
        runner.send()
    assert len(_outbox(config)) == READERS and clock.at == DUE + timedelta(minutes=30)
    assert "sent without an approval (on_timeout: send)" in caplog.text


def test_a_stop_while_waiting_sends_nothing(tmp_path: Path) -> None:
    config = _approval(tmp_path, "send")
    runner = _runner(config, _Clock(DUE))
    runner.wait = lambda seconds: True  # the scheduler is stopping
    runner.send()
    assert _outbox(config) == []


def test_without_the_setting_the_send_goes_at_once(tmp_path: Path) -> None:
    config = _config(tmp_path, DUE)
    clock = _Clock(DUE)
    runner, waits = _waiting(config, clock)
    runner.send()
    assert len(_outbox(config)) == READERS and waits == []


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
