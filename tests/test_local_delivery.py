"""Readers at their own local hour (issue 29), driven through the scheduler's passes with an
injected clock: five zones (Asia/Kolkata's half hour, and Europe/London across a change of
daylight saving each way) over three days, each reader getting each day's edition once at
their hour; one edition a day, frozen at its first delivery; a scheduler killed mid-bucket
(SIGKILL, a real process through the local SendGrid server) and started again misses nobody
and repeats nobody; weekly readers once a week on their day."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy

from newsletter.config import Config, load_config
from newsletter.delivery.mailers import make_mailer
from newsletter.models import (
    DeliveryStatus,
    Edition,
    EditionKind,
    EditionStatus,
    Frequency,
    RenderedEmail,
)
from newsletter.models.readers import Slot
from newsletter.readers.subscriptions import add_subscriber
from newsletter.schedule.runner import Runner
from newsletter.store import Store
from tests.conftest import DEMO, ROOT, write_config
from tests.sendgrid_server import SendgridServer, sendgrid_server

ITEM = re.compile(r"<item>.*?</item>", re.S)
ZONES = ("Asia/Kolkata", "Europe/London", "America/New_York", "Australia/Sydney", "Asia/Tokyo")
HOURS = (6, 7, 8, 9)


def _items() -> list[str]:
    return [m for p in sorted((DEMO / "feeds").glob("*.xml")) for m in ITEM.findall(p.read_text())]


class Feed:
    """A local feed whose stories change with each edition: a third of the demo's stories at
    a time, dated an hour before the clock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.groups = [_items()[n::3] for n in range(3)]

    def show(self, group: int, at: datetime) -> None:
        """The stories of ``group`` (a third of the demo's: a later round of the same third
        comes again at new addresses), dated an hour before ``at``."""
        stamp = format_datetime(at - timedelta(hours=1))
        again = f"/round-{group // 3}" if group >= 3 else ""
        items = [
            re.sub(
                r"<(link|guid)>https://([^/<]+)",
                rf"<\1>https://\2{again}",
                re.sub(r"<pubDate>.*?</pubDate>", f"<pubDate>{stamp}</pubDate>", item),
            )
            for item in self.groups[group % 3]
        ]
        body = "".join(items)
        self.path.write_text(
            '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
            f"<title>Day desk</title><link>https://day.example.com/</link>{body}"
            "</channel></rss>",
            encoding="utf-8",
        )


def _config(tmp_path: Path, feed: Path, **schedule: object) -> Config:
    path = write_config(
        tmp_path,
        {
            "feeds": [{"name": "Day desk", "url": str(feed)}],
            "digest": {"max_age_hours": 30},
            "schedule": {
                "send_at": "07:00",
                "timezone": "Europe/London",
                "delivery_hours": list(HOURS),
                "collect_every_minutes": 60,
                **schedule,
            },
        },
    )
    return load_config(path)


def _readers(config: Config, slots: list[Slot], start: int = 0) -> dict[str, Slot]:
    """Confirmed readers of these slots, r{start}@... on, by address."""
    store = Store.open(config.database_url)
    out = {}
    for n, slot in enumerate(slots, start):
        email = f"r{n:02d}@example.com"
        add_subscriber(
            store, email, known_sectors=config.sector_slugs, now=datetime.now(UTC), slot=slot
        )
        out[email] = slot
    store.close()
    return out


def _sent(config: Config) -> list[tuple[str, date, str, datetime]]:
    """Every delivery sent: (address, edition date, edition kind, when)."""
    engine = sqlalchemy.create_engine(config.database_url)
    with engine.connect() as conn:
        rows = conn.execute(
            sqlalchemy.text(
                "SELECT s.email, e.edition_date, e.kind, d.sent_at FROM deliveries d"
                " JOIN subscribers s ON s.id = d.subscriber_id"
                " JOIN editions e ON e.id = d.edition_id WHERE d.status = :status"
            ),
            {"status": DeliveryStatus.SENT.value},
        ).all()
    engine.dispose()
    out = []
    for email, day, kind, at in rows:
        day = day if isinstance(day, date) else date.fromisoformat(str(day))
        at = at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
        out.append((email, day, kind, at.replace(tzinfo=at.tzinfo or UTC)))
    return out


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def _run_days(
    tmp_path: Path, first: date, days: int, slots: list[Slot], step: timedelta, **schedule: object
) -> tuple[Config, dict[str, Slot]]:
    """Passes every ``step`` from before the first day's earliest delivery to after the last
    day's latest; the feed shows the next edition's stories at each edition's cut-off."""
    feed = Feed(tmp_path / "day.xml")
    config = _config(tmp_path, feed.path, **schedule)
    readers = _readers(config, slots)
    # before the first day's earliest delivery (06:00 in Tokyo is 21:00 UTC the day before),
    # and past the grace of the day before's last
    start = datetime.combine(first, datetime.min.time(), tzinfo=UTC) - timedelta(hours=4)
    clock = Clock(start)
    runner = Runner(
        config,
        open_store=lambda: Store.open(config.database_url),
        make_mailer=lambda: make_mailer(config),
        clock=clock,
    )
    editions = 0
    feed.show(0, clock.at)
    while clock.at < start + timedelta(days=days, hours=4 + 14):
        store = Store.open(config.database_url)
        frozen = sum(
            store.editions.edition_ref(first + timedelta(days=n), k) is not None
            for n in range(-1, days + 1)
            for k in EditionKind
        )
        store.close()
        if frozen != editions:  # the next edition's stories, from now on
            editions = frozen
            feed.show(editions, clock.at)
        runner.send()
        clock.at += step
    return config, readers


@pytest.mark.parametrize(
    "first",
    [date(2026, 10, 24), date(2026, 3, 28)],  # London falls back on 25 Oct, springs on 29 Mar
)
def test_five_zones_get_each_day_once_at_their_hour_for_three_days(
    tmp_path: Path, first: date
) -> None:
    slots = [Slot(zone, HOURS[i % 4]) for i, zone in enumerate(ZONES)] + [
        Slot("Europe/London", 6),  # early, before and after the change
        Slot(),  # chose nothing: the schedule's 07:00 in London
    ]
    step = timedelta(minutes=15)
    config, readers = _run_days(tmp_path, first, 3, slots, step)
    sent = _sent(config)
    days = [first + timedelta(days=n) for n in range(3)]
    for email, slot in readers.items():
        mine = sorted((day, at) for who, day, kind, at in sent if who == email and day in days)
        assert [day for day, _ in mine] == days, (email, slot, mine)  # each day, once
        zone = ZoneInfo(slot.timezone or "Europe/London")
        for day, at in mine:
            local = at.astimezone(zone)
            wanted = datetime.combine(day, datetime.min.time(), tzinfo=zone).replace(
                hour=slot.hour if slot.hour is not None else 7
            )
            assert local.date() == day, (email, at)
            assert timedelta(0) <= at - wanted.astimezone(UTC) < step, (email, local)
    assert max(Counter((who, day) for who, day, _, _ in sent).values()) == 1  # nobody twice
    store = Store.open(config.database_url)
    for day in days:  # one edition a day, sent; frozen at the day's first delivery
        ref = store.editions.edition_ref(day)
        assert ref is not None and ref.status == EditionStatus.SENT
    store.close()
    kolkata = [at for who, _, _, at in sent if readers[who].timezone == "Asia/Kolkata"]
    assert {(at.hour, at.minute) for at in kolkata} == {(0, 30)}  # 06:00 IST, on the half hour


@pytest.mark.parametrize("first", [date(2026, 10, 25), date(2026, 3, 29)])
def test_a_local_time_that_comes_twice_or_never_sends_once(tmp_path: Path, first: date) -> None:
    # London's 01:30 comes twice on 25 Oct (clocks go back at 02:00) and never on 29 Mar
    # (forward at 01:00): either way each reader gets that day's edition once
    config, readers = _run_days(
        tmp_path, first, 1, [Slot()] * 4, timedelta(minutes=5), send_at="01:30", delivery_hours=[]
    )
    sent = Counter(who for who, day, _, _ in _sent(config) if day == first)
    assert sent == dict.fromkeys(readers, 1)


def test_weekly_readers_get_one_email_a_week_on_their_day(tmp_path: Path) -> None:
    slots = [
        Slot("Asia/Tokyo", 8, Frequency.WEEKLY, 4),  # Fridays
        Slot("America/New_York", 6, Frequency.WEEKLY, None),  # Mondays, the default
    ]
    first = date(2026, 11, 16)  # a Monday
    config, readers = _run_days(tmp_path, first, 14, slots, timedelta(hours=1))
    sent = _sent(config)
    span = {first + timedelta(days=n) for n in range(14)}
    for email, slot in readers.items():
        mine = sorted((day, kind) for who, day, kind, _ in sent if who == email and day in span)
        weekday = 0 if slot.weekday is None else slot.weekday
        assert [d for d, _ in mine] == sorted(d for d in span if d.weekday() == weekday)
        assert {k for _, k in mine} == {EditionKind.WEEKLY}
    store = Store.open(config.database_url)
    weekly = store.editions.edition(date(2026, 11, 20), EditionKind.WEEKLY)
    assert weekly is not None and weekly.edition.kind == EditionKind.WEEKLY
    store.close()
    html = _weekly_email(config, weekly.edition)
    assert "The week: " in html.subject and "This week" in html.text
    # no page of its own: its link says it leads to the archive, not "this edition"
    assert "Every edition in the archive" in html.html and "browser" not in html.text
    shown = re.findall(
        r'<h3 class="h"[^>]*>(?:<span[^>]*>Update:</span> )?<a href="([^"]+)"', html.html
    )
    assert shown and len(shown) == len(set(shown))  # no storyline twice
    assert store_published(config) == 0  # the archive holds daily editions only


def _weekly_email(config: Config, edition: Edition) -> RenderedEmail:
    from newsletter.edition import digest, render

    sections = digest.layout(edition, ())
    return render.render_email(
        render.make_environment(config.templates_dir),
        edition,
        sections,
        settings=render.settings_for(config),
    )


def store_published(config: Config) -> int:
    store = Store.open(config.database_url)
    try:
        return store.editions.published_count()[0]
    finally:
        store.close()


@pytest.fixture
def server() -> Iterator[SendgridServer]:
    with sendgrid_server(api_key="SG.local-test-key") as s:
        yield s


def _due_pass(config: Config, at: datetime) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SENDGRID_API_KEY": "SG.local-test-key", "NEWSLETTER_NOW": at.isoformat()}
    return subprocess.Popen(
        [sys.executable, "-m", "newsletter", "--config", str(config.path), "send", "--due"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_a_pass_killed_mid_bucket_and_run_again_misses_nobody_and_repeats_nobody(
    tmp_path: Path, server: SendgridServer, signum: signal.Signals
) -> None:
    feed = Feed(tmp_path / "day.xml")
    at = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)  # 08:00 London: that bucket is due
    feed.show(0, at)
    path = write_config(
        tmp_path,
        {
            "feeds": [{"name": "Day desk", "url": str(feed.path)}],
            "digest": {"max_age_hours": 30},
            "schedule": {
                "send_at": "07:00",
                "timezone": "Europe/London",
                "delivery_hours": [7, 8, 9],
            },
            "delivery": {
                "backend": "sendgrid",
                "batch_size": 10,
                "readers_in_flight": 30,
                "preflight": False,
                "sendgrid": {"api_host": server.url, "concurrency": 3},
            },
        },
    )
    config = load_config(path)
    bucket = _readers(config, [Slot("Europe/London", 8)] * 60)
    later = _readers(config, [Slot("Asia/Tokyo", 8)] * 5 + [Slot("Europe/London", 9)], 60)
    store = Store.open(config.database_url)
    from newsletter import flows

    flows.collect_all(config, store, now=at)
    store.close()
    server.delay = 0.3
    process = _due_pass(config, at)
    deadline = time.monotonic() + 60
    while server.requests < 2:
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.01)
    process.send_signal(signum)
    process.communicate(timeout=60)
    server.delay = 0.0
    again = _due_pass(config, at + timedelta(minutes=1))
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err.decode()
    assert set(server.recipients) == set(bucket)  # the 08:00 London bucket, all of it
    twice = [a for a, n in server.recipients.items() if n > 1]
    assert len(twice) <= 30 and all(n <= 2 for n in server.recipients.values())
    if signum == signal.SIGTERM:
        assert twice == []  # a clean stop records what was in flight
    assert not set(later) & set(server.recipients)  # Tokyo's 08:00 was yesterday; 09:00 to come
    assert "Sent: edition of" in out.decode()


def test_status_lists_the_buckets_still_to_send(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from newsletter.cli import cli

    feed = Feed(tmp_path / "day.xml")
    at = datetime(2026, 12, 4, 6, 10, tzinfo=UTC)
    feed.show(0, at)
    config = _config(tmp_path, feed.path)
    _readers(config, [Slot("Asia/Kolkata", 9), Slot("America/New_York", 7), Slot()] * 2)
    monkeypatch.setenv("NEWSLETTER_NOW", at.isoformat())
    monkeypatch.setenv("COLUMNS", "100")
    out = CliRunner().invoke(cli, ["--config", str(config.path), "status"]).output
    assert "Buckets still to send" in out
    # 09:00 in Kolkata was 03:30 UTC (gone); 07:00 London (GMT) is 07:00 UTC; 07:00 New York
    # is 12:00 UTC; tomorrow's Kolkata bucket at 03:30 UTC after them
    assert re.search(r"2026-12-04 07:00\s+daily 2026-12-04\s+2\s+07:00 Europe/London", out)
    assert re.search(r"2026-12-04 12:00\s+daily 2026-12-04\s+2\s+07:00 America/New_York", out)
    assert re.search(r"2026-12-05 03:30\s+daily 2026-12-05\s+2\s+09:00 Asia/Kolkata", out)
    assert out.index("2026-12-04 07:00") < out.index("2026-12-04 12:00")
