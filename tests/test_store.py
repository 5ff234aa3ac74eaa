from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, inspect, select, text
from sqlalchemy.exc import IntegrityError

from newsletter.models import (
    DeliveryStatus,
    Edition,
    EditionKind,
    EditionStatus,
    FeedSource,
    FeedStatus,
    Frequency,
    Story,
    SubscriberStatus,
)
from newsletter.models.readers import Slot
from newsletter.records import NewReader, StoredCounts
from newsletter.store import Store
from newsletter.store.base import foreign_keys_unchecked
from newsletter.store.store import MIGRATIONS
from newsletter.store.tables import deliveries, metadata
from tests.conftest import NOW

FEED = FeedSource(name="Wire", url="https://wire.example.com/feed", location="x", sector="oil-gas")


def _story(n: int, **changes: object) -> Story:
    story = Story(
        id=f"id{n}",
        title=f"Title {n}",
        url=f"https://wire.example.com/{n}",
        summary=f"Summary {n}",
        source="ignored",
        published=NOW - timedelta(hours=n),
    )
    return dataclasses.replace(story, **changes)  # type: ignore[arg-type]


def test_migrations_create_the_schema_the_tables_describe(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'sub' / 'n.db'}")
    assert (tmp_path / "sub" / "n.db").is_file()
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diff == []
        head = ScriptDirectory.from_config(_alembic()).get_current_head()
        assert MigrationContext.configure(conn).get_current_revision() == head
    assert {"feeds", "stories", "alembic_version"} <= set(inspect(store.engine).get_table_names())
    store.close()
    Store.open(f"sqlite:///{tmp_path / 'sub' / 'n.db'}").close()  # a second open is a no-op


def _save(store: Store, items: list[Story]) -> StoredCounts:
    return store.feeds.record_fetched(
        FEED, items, now=NOW, status=200, etag=None, last_modified=None
    )


def test_stories_are_inserted_then_updated_without_duplicates(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'n.db'}")
    store.feeds.sync_feeds([FEED])
    assert _save(store, [_story(1), _story(2)]) == StoredCounts(2, 0)
    assert _save(store, [_story(1), _story(2)]) == StoredCounts(0, 0)
    changed = _story(1, title="Title 1, updated")
    assert _save(store, [changed, _story(3)]) == StoredCounts(1, 1)
    stored = store.stories.stored()
    assert [s.id for s in stored] == ["id1", "id2", "id3"]  # newest first
    assert stored[0].title == "Title 1, updated"
    assert stored[0].source == "Wire" and stored[0].feed_url == FEED.url
    assert stored[0].published == NOW - timedelta(hours=1)
    assert stored[0].published.tzinfo is UTC
    assert [s.id for s in store.stories.stored(since=NOW - timedelta(hours=2))] == ["id1", "id2"]
    assert len(store.stories.stored()) == 3


def test_times_round_trip_as_utc(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'n.db'}")
    store.feeds.sync_feeds([FEED])
    from zoneinfo import ZoneInfo

    local = datetime(2026, 3, 29, 2, 30, tzinfo=ZoneInfo("America/New_York"))
    _save(store, [_story(1, published=local)])
    (story,) = store.stories.stored()
    assert story.published == local and story.published.tzinfo is UTC


def test_feed_health_is_recorded(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'n.db'}")
    store.feeds.sync_feeds([FEED])
    store.feeds.record_failure(FEED, "HTTP 500", now=NOW - timedelta(days=3), status=500)
    store.feeds.record_failure(FEED, "HTTP 502", now=NOW, status=502)
    (health,) = store.feeds.feed_health(now=NOW)
    assert (health.consecutive_failures, health.last_error, health.last_status) == (
        2,
        "HTTP 502",
        502,
    )
    assert health.failing_since == NOW - timedelta(days=3)  # the first failure in the run
    assert health.status == FeedStatus.ACTIVE and health.last_success is None
    store.feeds.record_fetched(
        FEED, [_story(1), _story(30)], now=NOW, status=200, etag='"e"', last_modified=None
    )
    (health,) = store.feeds.feed_health(now=NOW)
    assert (health.consecutive_failures, health.failing_since, health.last_success) == (
        0,
        None,
        NOW,
    )
    assert health.stories_last_day == 1  # the other story is 30 hours old
    assert store.feeds.feed_states()[FEED.url].etag == '"e"'
    store.feeds.record_failure(FEED, "HTTP 410 Gone", now=NOW, status=410, gone=True)
    assert store.feeds.feed_states()[FEED.url].status == FeedStatus.GONE


def test_upgrade_from_the_first_schema_keeps_the_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    config = _alembic()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.execute(
            text(
                "INSERT INTO feeds (url, name, status, consecutive_failures) "
                f"VALUES ('https://old.example.com/f', 'Old', '{FeedStatus.ACTIVE}', 3)"
            )
        )
    engine.dispose()
    store = Store.open(url)
    (health,) = store.feeds.feed_health(now=NOW)
    assert (health.name, health.consecutive_failures, health.failing_since) == ("Old", 3, None)


def _alembic() -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def test_sent_before_can_leave_out_old_editions(tmp_path: Path) -> None:
    from newsletter.models import Edition, Section, Sector

    store = Store.open(f"sqlite:///{tmp_path / 'n.db'}")
    sector = Sector("oil-gas", "Oil & Gas")
    for days_ago, story_id in [(10, "old"), (2, "recent"), (0, "today")]:
        day = NOW.date() - timedelta(days=days_ago)
        story = _story(1, id=story_id, url=f"https://x.example.com/{story_id}")
        edition = Edition("P", day, (Section(sector, (story,)),), per_sector=5)
        store.editions.save_edition(edition, status=EditionStatus.SENT, now=NOW)
    assert store.editions.sent_before(NOW.date()).ids == {"old", "recent"}
    recent = store.editions.sent_before(NOW.date(), since=NOW.date() - timedelta(days=3))
    assert recent.ids == {"recent"} and recent.urls == {"https://x.example.com/recent"}


def test_the_newest_revision_read_from_the_file_names_is_alembics_head() -> None:
    """`Store.migrate` skips importing Alembic when the database is at `newest_revision()`:
    that shortcut is right only while the file names say what Alembic says."""
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    from newsletter.store.store import MIGRATIONS, newest_revision

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_heads() == [newest_revision()]


def test_the_choices_still_to_send_are_those_of_pending_rows_in_the_order_claims_meet_them(
    tmp_path: Path,
) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'n.db'}")
    edition = Edition("P", NOW.date(), (), 5)
    store.editions.save_edition(edition, status=EditionStatus.FROZEN, now=NOW)
    stored = store.editions.edition(NOW.date())
    assert stored is not None
    choices = [("oil-gas",), ("ai-semis", "oil-gas"), (), ("mining",)]
    store.readers.bulk_import(
        [
            NewReader(f"r{n:02d}@example.com", "", choices[n % 4], f"token-{n:02d}-{'x' * 24}")
            for n in range(20)
        ],
        [],
        now=NOW,
    )
    store.ledger.seed_deliveries(stored.id)
    pending = store.ledger.pending_choices(stored.id)
    assert sorted(pending) == sorted(choices) and len(pending) == 4
    met: list[tuple[str, ...]] = []
    while claimed := store.ledger.claim_batch(stored.id, claim=f"c:{len(met)}", size=5, now=NOW):
        met += [c.reader.sectors for c in claimed]
        if len(met) == 5:  # the first choice's readers all sent: it is not pending any more
            assert {c.reader.sectors for c in claimed} == {pending[0]}
            store.ledger.record_deliveries(sent={c.delivery_id: "m" for c in claimed}, now=NOW)
            assert store.ledger.pending_choices(stored.id) == pending[1:]
    assert list(dict.fromkeys(met)) == pending


@pytest.mark.parametrize("every", [7, 2])  # a few runs of neighbouring ids; more than 16
def test_outcomes_shared_by_many_readers_are_recorded_for_exactly_those_readers(
    tmp_path: Path, database: str | None, every: int
) -> None:
    """A call's readers share its message id and are recorded together, by the runs of
    neighbouring ids they make (or, past 16 runs, by their ids): the readers between them,
    recorded otherwise, keep their own outcome."""
    store = Store.open(database or f"sqlite:///{tmp_path / 'n.db'}")
    edition_id = _edition_for_readers(store, 40)
    claimed = store.ledger.claim_batch(edition_id, claim="c:1", size=40, now=NOW)
    left = [c for n, c in enumerate(claimed) if n % every == every - 1]
    sent = [c for c in claimed if c not in left]
    store.ledger.record_deliveries(
        sent={c.delivery_id: "call-1" for c in sent},
        skipped={c.delivery_id: "left the list" for c in left},
        now=NOW,
    )
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(deliveries.c.id, deliveries.c.status, deliveries.c.message_id).where(
                deliveries.c.edition_id == edition_id
            )
        ).all()
    outcome = {row.id: (row.status, row.message_id) for row in rows}
    assert outcome == {
        **{c.delivery_id: (DeliveryStatus.SENT, "call-1") for c in sent},
        **{c.delivery_id: (DeliveryStatus.SKIPPED, None) for c in left},
    }


def test_confirmed_at_least_counts_only_confirmed_readers(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'n.db'}")
    assert not store.readers.confirmed_at_least(1)
    statuses = [SubscriberStatus.CONFIRMED] * 3 + [SubscriberStatus.UNSUBSCRIBED] * 2
    store.readers.bulk_import(
        [
            NewReader(f"r{n}@example.com", "", ("oil-gas",), f"token-{n}-{'x' * 24}", status)
            for n, status in enumerate(statuses)
        ],
        [],
        now=NOW,
    )
    assert store.readers.confirmed_at_least(3)
    assert not store.readers.confirmed_at_least(4)


def test_seeding_checks_the_edition_itself_and_leaves_foreign_keys_checked(tmp_path: Path) -> None:
    """The seeding runs without SQLite's per-row foreign-key look-ups: its statement checks
    the edition once (a missing one gets no rows), and the connection it used checks foreign
    keys again afterwards."""
    store = Store.open(f"sqlite:///{tmp_path / 'n.db'}")
    store.readers.bulk_import(
        [NewReader("r@example.com", "", ("oil-gas",), f"token-r-{'x' * 24}")], [], now=NOW
    )
    assert store.ledger.seed_deliveries(999) == 0  # no such edition: no orphan rows
    store.editions.save_edition(
        Edition("P", NOW.date(), (), 5), status=EditionStatus.FROZEN, now=NOW
    )
    stored = store.editions.edition(NOW.date())
    assert stored is not None
    assert store.ledger.seed_deliveries(stored.id) == 1
    with store.engine.connect() as conn, foreign_keys_unchecked(conn):
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 0  # it takes effect
    with store.engine.connect() as conn:  # the pool's one connection, used by the seeding
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        with pytest.raises(IntegrityError):
            conn.execute(
                deliveries.insert().values(
                    edition_id=stored.id,
                    subscriber_id=424242,
                    status=DeliveryStatus.PENDING,
                    attempts=0,
                )
            )


def test_a_claimed_reader_reads_back_exactly_as_stored(
    tmp_path: Path, database: str | None
) -> None:
    """A claim reads its readers back in one piece (on SQLite as one JSON array): names and
    addresses with quotes, backslashes, tabs, emoji and scripts of every kind, their choices
    and watchlists come back as stored, in the ledger's order, each row claimed once."""
    store = Store.open(database or f"sqlite:///{tmp_path / 'n.db'}")
    store.editions.save_edition(
        Edition("P", NOW.date(), (), 5), status=EditionStatus.FROZEN, now=NOW
    )
    stored = store.editions.edition(NOW.date())
    assert stored is not None
    names = ['Zoë "Z" \\ <Ortiz>', "名前 テスト", "عربي \u202e", "Tab\tName", "🚀 Rocket", ""]
    readers = [
        NewReader(
            f"o'reader.{n}+x@example.com",
            name,
            ("oil-gas", "ai-semis")[: n % 3],
            f"token-{n:02d}-{'x' * 24}",
            SubscriberStatus.CONFIRMED,
            watchlist=(f'Acme "{n}"', "ÉDF\\SA") if n % 2 else (),
        )
        for n, name in enumerate(names * 3)
    ]
    store.readers.bulk_import(readers, [], now=NOW)
    store.ledger.seed_deliveries(stored.id)
    first = store.ledger.claim_batch(stored.id, claim="h:1:a:1", size=10, now=NOW)
    rest = store.ledger.claim_batch(stored.id, claim="h:1:a:2", size=10, now=NOW)
    assert len(first) == 10 and len(rest) == 8
    assert not store.ledger.claim_batch(stored.id, claim="h:1:a:3", size=10, now=NOW)
    claimed = first + rest
    ids = [c.delivery_id for c in claimed]
    assert ids == sorted(ids) and len(set(ids)) == 18
    expected = {r.email: r for r in readers}
    for claim in claimed:
        reader = expected.pop(claim.reader.email)
        assert claim.reader.name == reader.name
        assert claim.reader.sectors == reader.sectors
        assert claim.reader.watchlist == reader.watchlist
        assert claim.reader.token == reader.token
        assert claim.reader.status == SubscriberStatus.CONFIRMED
    assert not expected
    counts = store.ledger.delivery_counts(stored.id)
    assert counts == {DeliveryStatus.CLAIMED: 18}
    store.close()


def test_a_claim_takes_only_its_editions_rows_when_anothers_ids_lie_between(
    tmp_path: Path, database: str | None
) -> None:
    """The scheduler seeds an edition's readers slot by slot, and a weekly edition's between
    them: the daily edition's pending ids then span the weekly one's, and a claim of the daily
    edition takes its own rows only."""
    store = Store.open(database or f"sqlite:///{tmp_path / 'n.db'}")
    daily = Edition("P", NOW.date(), (), 5)
    store.editions.save_edition(daily, status=EditionStatus.FROZEN, now=NOW)
    weekly = dataclasses.replace(daily, kind=EditionKind.WEEKLY)
    store.editions.save_edition(weekly, status=EditionStatus.FROZEN, now=NOW)
    day_id = store.editions.edition(NOW.date()).id  # type: ignore[union-attr]
    week_id = store.editions.edition(NOW.date(), EditionKind.WEEKLY).id  # type: ignore[union-attr]
    london, tokyo = Slot("Europe/London"), Slot("Asia/Tokyo")
    weekly_slot = Slot("", None, Frequency.WEEKLY, None)
    slots = [london] * 4 + [weekly_slot] * 3 + [tokyo] * 4
    store.readers.bulk_import(
        [
            NewReader(
                f"r{n:02d}@example.com", "", ("oil-gas",), f"token-{n:02d}-{'x' * 24}", slot=s
            )
            for n, s in enumerate(slots)
        ],
        [],
        now=NOW,
    )
    store.ledger.seed_deliveries(day_id, slots=[london])
    store.ledger.seed_deliveries(week_id, frequency=Frequency.WEEKLY)
    store.ledger.seed_deliveries(day_id, slots=[tokyo])
    assert store.ledger.delivery_counts(day_id) == {DeliveryStatus.PENDING: 8}
    claimed = store.ledger.claim_batch(day_id, claim="h:1:d:1", size=100, now=NOW)
    assert len(claimed) == 8
    assert {c.reader.email for c in claimed} == {
        f"r{n:02d}@example.com" for n, s in enumerate(slots) if s != weekly_slot
    }
    assert store.ledger.delivery_counts(week_id) == {DeliveryStatus.PENDING: 3}
    assert store.ledger.delivery_counts(day_id) == {DeliveryStatus.CLAIMED: 8}
    store.close()


def test_a_claim_whose_rows_another_sender_took_meanwhile_claims_the_next(
    tmp_path: Path, database: str | None
) -> None:
    """Another sender claims the very rows this claim picked, between its choice and its
    UPDATE: the claim then takes the next pending rows, not none (none would tell the sender
    that nothing is left)."""
    url = database or f"sqlite:///{tmp_path / 'n.db'}"
    store, other = Store.open(url), Store.open(url)
    edition_id = _edition_for_readers(store, 20)
    taken: list[int] = []

    def cut_in(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "UPDATE DELIVERIES" in statement.upper() and not taken:
            taken.extend(
                c.delivery_id
                for c in other.ledger.claim_batch(
                    edition_id, claim="elsewhere:1:x:1", size=10, now=NOW
                )
            )

    event.listen(store.engine, "before_cursor_execute", cut_in)
    mine = store.ledger.claim_batch(edition_id, claim="here:1:x:1", size=10, now=NOW)
    event.remove(store.engine, "before_cursor_execute", cut_in)
    assert len(taken) == 10 and len(mine) == 10
    assert not set(taken) & {c.delivery_id for c in mine}
    assert store.ledger.delivery_counts(edition_id) == {DeliveryStatus.CLAIMED: 20}
    store.close()
    other.close()


def _edition_for_readers(store: Store, readers: int) -> int:
    """A frozen edition of today with a pending row for each of ``readers`` new readers."""
    store.editions.save_edition(
        Edition("P", NOW.date(), (), 5), status=EditionStatus.FROZEN, now=NOW
    )
    stored = store.editions.edition(NOW.date())
    assert stored is not None
    store.readers.bulk_import(
        [
            NewReader(f"r{n:02d}@example.com", "", (), f"token-{n:02d}-{'x' * 24}")
            for n in range(readers)
        ],
        [],
        now=NOW,
    )
    store.ledger.seed_deliveries(stored.id)
    return stored.id


def _rows(engine: Engine) -> dict[str, int]:
    names = ("subscribers", "editions", "edition_stories", "deliveries", "subscriber_events")
    with engine.connect() as conn:
        return {n: conn.execute(text(f"SELECT count(*) FROM {n}")).scalar_one() for n in names}


def test_upgrading_a_database_that_has_sent_keeps_every_row(tmp_path: Path) -> None:
    """On SQLite a migration that rebuilds a table (Alembic's batch mode: copy, drop, rename)
    dropped the old table with foreign keys on, and ON DELETE CASCADE emptied the tables that
    point at it: the ledger of what was sent, and the edition's stories. The next send then
    sent every reader the same edition again."""
    from newsletter import flows
    from newsletter.delivery.mailers import make_mailer
    from tests.test_send import add_readers, collected, make_config

    config = make_config(tmp_path)
    store = collected(config)
    add_readers(config, store, 3)
    assert flows.send_edition(config, store, make_mailer(config), now=lambda: NOW).sent == 3
    before = _rows(store.engine)
    assert before["deliveries"] == 3 and before["edition_stories"] > 0
    store.close()
    # the schema of a machine still on 0018 (0019 rebuilds the readers' and editions' tables)
    engine = create_engine(config.database_url)
    with engine.begin() as conn:
        config_ = _alembic()
        config_.attributes["connection"] = conn
        command.downgrade(config_, "0018")
    assert _rows(engine) == before
    engine.dispose()
    store = Store.open(config.database_url)  # migrates to the newest, as `db upgrade` does
    assert _rows(store.engine) == before
    again = flows.send_edition(config, store, make_mailer(config), now=lambda: NOW)
    assert again.sent == 0  # each reader has it once
    store.close()


@pytest.mark.parametrize(
    "revision, says",
    [
        ("9999", "newer than this version of newsletter knows"),
        ("3f1c2a9be0d4", "is none of newsletter's"),  # another application's Alembic history
    ],
)
def test_a_database_of_a_newer_version_or_another_application_is_named_not_a_traceback(
    tmp_path: Path, revision: str, says: str
) -> None:
    from click.testing import CliRunner

    from newsletter.cli import cli
    from tests.conftest import write_config

    path = write_config(tmp_path, {"feeds": []})
    store = Store.open(f"sqlite:///{tmp_path / 'newsletter.db'}")
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    store.close()
    env = {"NEWSLETTER_DATABASE_URL": f"sqlite:///{tmp_path / 'newsletter.db'}"}
    for args in (["status"], ["db", "upgrade"], ["db", "current"]):
        result = CliRunner().invoke(cli, ["--config", str(path), *args], env=env)
        assert result.exit_code == 3, (args, result.output)
        assert says in result.output and "Hint:" in result.output, (args, result.output)
        assert "run `newsletter db upgrade`" not in result.output
