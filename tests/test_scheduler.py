"""`newsletter run`: triggers across daylight saving, and the real scheduler in a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.config import Config, ScheduleConfig, load_config
from newsletter.scheduler import next_runs, send_trigger
from newsletter.store import Store
from newsletter.subscriptions import add_subscriber
from tests.conftest import DEMO, ROOT, write_config


@pytest.mark.parametrize(
    ("zone", "before", "after"),
    [
        (
            "Europe/London",
            datetime(2026, 3, 27, 12, tzinfo=UTC),
            (0, 1),
        ),  # clocks go forward 29 Mar
        ("Europe/London", datetime(2026, 10, 23, 12, tzinfo=UTC), (1, 0)),  # and back 25 Oct
        ("America/New_York", datetime(2026, 3, 6, 18, tzinfo=UTC), (-5, -4)),  # forward 8 Mar
        ("America/New_York", datetime(2026, 10, 30, 18, tzinfo=UTC), (-4, -5)),  # back 1 Nov
    ],
)
def test_the_send_stays_at_local_seven_across_daylight_saving(
    zone: str, before: datetime, after: tuple[int, int]
) -> None:
    trigger = send_trigger(ScheduleConfig(send_at=dtime(7, 0), timezone=zone))
    fire = None
    offsets = []
    now = before
    for _ in range(6):
        fire = trigger.get_next_fire_time(fire, now)
        local = fire.astimezone(ZoneInfo(zone))
        assert (local.hour, local.minute, local.second) == (7, 0, 0)
        offsets.append(int(local.utcoffset().total_seconds() // 3600))
        now = fire + timedelta(seconds=1)
    assert offsets[0] == after[0] and offsets[-1] == after[1]  # the UTC hour moved, not 07:00


def test_weekdays_only() -> None:
    trigger = send_trigger(ScheduleConfig(send_at=dtime(6, 30), weekdays=["mon", "fri"]))
    fire = trigger.get_next_fire_time(None, datetime(2026, 11, 25, 12, tzinfo=UTC))  # Wednesday
    assert fire == datetime(2026, 11, 27, 6, 30, tzinfo=UTC)  # Friday
    fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    assert fire == datetime(2026, 11, 30, 6, 30, tzinfo=UTC)  # Monday


READERS = 3


def _config(tmp_path: Path, send_at: datetime, grace_minutes: float = 180) -> Config:
    feeds = [{"name": p.stem, "url": str(p)} for p in sorted((DEMO / "feeds").glob("*.xml"))]
    path = write_config(
        tmp_path,
        {
            "feeds": feeds,
            "digest": {"max_age_hours": 1000000},
            "schedule": {
                "send_at": send_at.strftime("%H:%M:%S"),
                "timezone": "UTC",
                "collect_every_minutes": 60,
                "misfire_grace_minutes": grace_minutes,
            },
        },
    )
    config = load_config(path)
    store = Store.open(config.database_url)
    for i in range(READERS):
        add_subscriber(
            store, f"r{i}@example.com", known_sectors=config.sector_slugs, now=datetime.now(UTC)
        )
    store.close()
    return config


def _start(config: Config) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "NEWSLETTER_NOW"}
    return subprocess.Popen(
        [sys.executable, "-m", "newsletter", "--config", str(config.path), "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def _outbox(config: Config) -> list[Path]:
    return sorted(config.outbox_dir.glob("*/*.eml"))


def _wait(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def _kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)


def _stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    return out, err


def test_run_sends_at_the_time_and_a_restart_sends_nothing_twice(tmp_path: Path) -> None:
    config = _config(tmp_path, datetime.now(UTC) + timedelta(seconds=8))
    process = _start(config)
    assert _wait(lambda: len(_outbox(config)) == READERS, 40), process.stderr
    _kill(process)
    assert (
        sorted(p.parent.name for p in _outbox(config))
        == [datetime.now(UTC).date().isoformat()] * READERS
    )
    again = _start(config)
    time.sleep(4)
    assert len(_outbox(config)) == READERS
    out, _ = _stop(again)
    assert "stopping: finishing the batch in flight" in out and "stopped" in out
    runs = {r.job: r.at for r in next_runs(config.database_url)}
    send = runs.get("send")
    assert set(runs) == {"collect", "send"} and send is not None and send > datetime.now(UTC)
    status = CliRunner().invoke(cli, ["--config", str(config.path), "status"])
    assert f"Next send: {send:%Y-%m-%d %H:%M:%S} UTC" in status.stdout
    assert "Next collect: " in status.stdout


def test_a_send_missed_while_down_runs_on_restart_within_the_grace(tmp_path: Path) -> None:
    send_at = datetime.now(UTC) + timedelta(seconds=10)
    config = _config(tmp_path, send_at)
    process = _start(config)
    assert _wait(lambda: "next send" in (process.stdout.readline() if process.stdout else ""), 20)
    _kill(process)  # down before the send time
    assert _wait(lambda: datetime.now(UTC) > send_at + timedelta(seconds=2), 20)
    assert _outbox(config) == []
    restarted = _start(config)
    assert _wait(lambda: len(_outbox(config)) == READERS, 40)
    time.sleep(1)
    assert len(_outbox(config)) == READERS  # once
    _stop(restarted)


def test_a_send_missed_past_the_grace_is_skipped_and_says_how_to_send(tmp_path: Path) -> None:
    send_at = datetime.now(UTC) + timedelta(seconds=10)
    config = _config(tmp_path, send_at, grace_minutes=0.05)  # 3 seconds
    process = _start(config)
    assert _wait(lambda: "next send" in (process.stdout.readline() if process.stdout else ""), 20)
    _kill(process)
    assert _wait(lambda: datetime.now(UTC) > send_at + timedelta(seconds=6), 20)
    restarted = _start(config)
    time.sleep(4)
    _, err = _stop(restarted)
    assert _outbox(config) == []
    assert "was missed by" in err and "so nothing was sent" in err
    assert f"newsletter --config {config.path.resolve()} send" in err


def test_only_one_scheduler_per_database(tmp_path: Path) -> None:
    config = _config(tmp_path, datetime.now(UTC) + timedelta(hours=3))
    first = _start(config)
    assert _wait(lambda: "next send" in (first.stdout.readline() if first.stdout else ""), 20)
    second = _start(config)
    _, err = second.communicate(timeout=60)
    assert second.returncode == 1
    assert "Error: another `newsletter run` (" in err and f":{first.pid} since" in err
    _stop(first)
