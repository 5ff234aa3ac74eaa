"""A send run again, rehearsed or aimed at a date: a dry run says what the real command would
do (who it would send to, who had it already, which edition), ``--retry-failed`` sends to the
readers whose delivery failed and to no one else, and ``send --date`` with today's date
collects first as a plain ``send`` does."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter import flows
from newsletter.cli import cli
from newsletter.delivery.mailers import make_mailer
from newsletter.errors import EditionError
from newsletter.models import Frequency, Slot, SubscriberStatus
from newsletter.readers.subscriptions import add_subscriber, new_token
from newsletter.store import Store
from tests.conftest import NOW
from tests.test_send import clock, collected, make_config


def _add(store: Store, address: str, slot: Slot | None = None) -> None:
    add_subscriber(store, address, known_sectors=(), now=NOW, slot=slot)


def test_a_dry_run_after_a_send_counts_who_had_it_and_who_would_get_it(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    store = collected(config)
    _add(store, "ana@example.com")
    _add(store, "bo@example.com")
    first = flows.send_edition(config, store, make_mailer(config), now=clock)
    assert (first.sent, first.already_sent) == (2, 0)
    _add(store, "cy@example.com")  # joined after the send
    _add(store, "di@example.com", Slot(frequency=Frequency.WEEKLY))  # not a daily reader

    rehearsed = flows.send_edition(config, store, make_mailer(config), now=clock, dry_run=True)
    real = flows.send_edition(config, store, make_mailer(config), now=clock)

    assert (rehearsed.sent, rehearsed.failed, rehearsed.already_sent) == (1, 0, 2)
    assert (real.sent, real.failed, real.already_sent) == (1, 0, 2)


def test_a_dry_run_for_a_day_without_an_edition_refuses_as_the_send_does(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    store = collected(config)
    _add(store, "ana@example.com")
    past = NOW.date() - timedelta(days=30)
    for dry_run in (True, False):
        with pytest.raises(EditionError, match=f"no edition of {past} was built"):
            flows.send_edition(
                config, store, make_mailer(config), now=clock, day=past, dry_run=dry_run
            )


def test_retrying_failed_deliveries_sends_to_no_new_reader(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    store = collected(config)
    _add(store, "ana@example.com")
    # an address an older version stored that no header can carry: its delivery fails
    store.readers.upsert_subscriber(
        "jos\u00e9@example.com",
        name="",
        sectors=[],
        status=SubscriberStatus.CONFIRMED,
        token=new_token(),
        now=NOW,
    )
    first = flows.send_edition(config, store, make_mailer(config), now=clock)
    assert (first.sent, first.failed) == (1, 1)
    _add(store, "late@example.com")

    for dry_run in (True, False):
        retried = flows.send_edition(
            config, store, make_mailer(config), now=clock, retry_failed=True, dry_run=dry_run
        )
        assert (retried.sent, retried.failed, retried.already_sent) == (0, 1, 1)
    finished = flows.send_edition(config, store, make_mailer(config), now=clock)
    assert (finished.sent, finished.failed, finished.already_sent) == (1, 0, 1)


def test_send_with_todays_date_collects_first(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    store = Store.open(config.database_url)
    _add(store, "ana@example.com")
    store.close()
    result = CliRunner().invoke(
        cli,
        ["--config", str(config.path), "send", "--date", NOW.date().isoformat()],
        env={"NEWSLETTER_NOW": NOW.isoformat()},
    )
    assert result.exit_code == 0, result.output
    assert "1 reader sent" in result.output
    # the outbox's folder of the day, where the copies are
    assert f"through outbox {config.outbox_dir / NOW.date().isoformat()}" in result.output
