"""The desk's changes to a day's overrides file: each change applied and kept in the file,
two editors at once (both kept, or the second told, never one lost), the approval and what
withdraws it, the subject and the intro carried into the email."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from newsletter.config import Config, load_config, load_overrides, save_move
from newsletter.config.dayedits import (
    NO_FILE,
    Change,
    Outcome,
    Part,
    approval_of,
    approve_day,
    day_path,
    edit_day,
    read_day,
    version_of,
)
from newsletter.errors import ConfigError, EditionError
from newsletter.flows import collect_all, desk
from newsletter.flows.send import frozen_edition
from newsletter.models import EditionStatus
from newsletter.store import Store
from tests.conftest import write_config

DAY = date(2026, 11, 25)
NOW = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return load_config(write_config(tmp_path, {}))


def _file(config: Config) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(day_path(config, DAY).read_text(encoding="utf-8"))
    return data


def test_each_kind_of_change_lands_in_the_day_file_and_loads_as_overrides(config: Config) -> None:
    seen = NO_FILE
    changes = [
        Change(Part.PIN, "1", "", story="a1"),
        Change(Part.DROP, "1", "", story="b2"),
        Change(Part.MOVE, "oil-gas", "", story="c3"),
        Change(Part.WHY, "Third plant this year.", "", story="a1"),
        Change(Part.SUBJECT, "Brent at a two-year high", ""),
        Change(Part.INTRO, "A busy day for oil.", ""),
        Change(Part.NOTE, "Markets closed Thursday.", ""),
    ]
    for change in changes:
        edited = edit_day(config, DAY, change, seen=seen)
        assert edited.outcome is Outcome.APPLIED and edited.version != seen
        seen = edited.version
    overrides, path = load_overrides(config, DAY)
    assert path == day_path(config, DAY)
    assert overrides.pin == ("a1",) and overrides.drop == ("b2",)
    assert overrides.move == (("c3", "oil-gas"),)
    assert overrides.notes == (("a1", "Third plant this year."),)
    assert (
        overrides.subject == "Brent at a two-year high" and overrides.intro == "A busy day for oil."
    )
    assert overrides.note == "Markets closed Thursday."
    # and undone: unpin, undrop, move back, note removed
    for change in [
        Change(Part.PIN, "", "1", story="a1"),
        Change(Part.DROP, "", "1", story="b2"),
        Change(Part.MOVE, "", "oil-gas", story="c3"),
        Change(Part.WHY, "", "Third plant this year.", story="a1"),
    ]:
        seen = edit_day(config, DAY, change, seen=seen).version
    assert _file(config) == {
        "subject": "Brent at a two-year high",
        "intro": "A busy day for oil.",
        "note": "Markets closed Thursday.",
    }


def test_a_hand_written_link_is_the_same_story(config: Config) -> None:
    path = day_path(config, DAY)
    path.parent.mkdir(parents=True)
    path.write_text("pin: [https://example.com/a]\n", encoding="utf-8")
    seen = version_of(path)
    change = Change(Part.PIN, "", "1", story="a1", link="https://example.com/a")
    assert edit_day(config, DAY, change, seen=seen).outcome is Outcome.APPLIED
    assert _file(config) == {}


def test_two_editors_on_different_parts_both_keep_their_change(config: Config) -> None:
    seen = edit_day(config, DAY, Change(Part.SUBJECT, "Old", ""), seen=NO_FILE).version
    # both editors loaded the page at `seen`; the first pins, the second writes the intro
    first = edit_day(config, DAY, Change(Part.PIN, "1", "", story="a1"), seen=seen)
    second = edit_day(config, DAY, Change(Part.INTRO, "Hello.", ""), seen=seen)
    assert first.outcome is Outcome.APPLIED and second.outcome is Outcome.ON_TOP
    assert _file(config) == {"subject": "Old", "pin": ["a1"], "intro": "Hello."}


def test_two_editors_on_the_same_part_the_second_is_told_the_current_value(
    config: Config,
) -> None:
    seen = edit_day(config, DAY, Change(Part.SUBJECT, "Old", ""), seen=NO_FILE).version
    first = edit_day(config, DAY, Change(Part.SUBJECT, "First's", "Old"), seen=seen)
    second = edit_day(config, DAY, Change(Part.SUBJECT, "Second's", "Old"), seen=seen)
    assert first.outcome is Outcome.APPLIED
    assert second.outcome is Outcome.REFUSED and second.current == "First's"
    assert _file(config) == {"subject": "First's"}
    # told, the second editor sends it again from what is there now: it lands
    again = edit_day(config, DAY, Change(Part.SUBJECT, "Second's", "First's"), seen=second.version)
    assert again.outcome is Outcome.APPLIED and _file(config) == {"subject": "Second's"}


def test_the_same_change_twice_is_no_conflict(config: Config) -> None:
    seen = version_of(day_path(config, DAY))
    edit_day(config, DAY, Change(Part.MOVE, "oil-gas", "", story="c3"), seen=seen)
    same = edit_day(config, DAY, Change(Part.MOVE, "oil-gas", "", story="c3"), seen=seen)
    assert same.outcome is Outcome.UNCHANGED and same.current == "oil-gas"


def test_many_editors_at_once_lose_nothing(config: Config) -> None:
    """Twenty threads each pin their own story on the same version: every pin is kept."""
    start = threading.Barrier(20)
    outcomes: list[Outcome] = []

    def pin(i: int) -> None:
        start.wait()
        outcomes.append(
            edit_day(config, DAY, Change(Part.PIN, "1", "", story=f"s{i}"), seen=NO_FILE).outcome
        )

    threads = [threading.Thread(target=pin, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(_file(config)["pin"]) == sorted(f"s{i}" for i in range(20))
    assert outcomes.count(Outcome.APPLIED) == 1 and outcomes.count(Outcome.ON_TOP) == 19


def test_a_bad_change_or_a_broken_file_is_refused_and_the_file_kept(config: Config) -> None:
    with pytest.raises(ConfigError, match="unknown sector 'oil'"):
        edit_day(config, DAY, Change(Part.MOVE, "oil", "", story="c3"), seen=NO_FILE)
    with pytest.raises(ConfigError, match="subject"):
        edit_day(config, DAY, Change(Part.SUBJECT, "x" * 201, ""), seen=NO_FILE)
    assert not day_path(config, DAY).exists()
    day_path(config, DAY).write_text("pin: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError):
        edit_day(config, DAY, Change(Part.PIN, "1", "", story="a"), seen=NO_FILE)
    assert day_path(config, DAY).read_text(encoding="utf-8") == "pin: [unclosed\n"


def test_an_approval_stands_until_the_file_changes_by_the_desk_or_by_hand(
    config: Config,
) -> None:
    seen = edit_day(config, DAY, Change(Part.PIN, "1", "", story="a1"), seen=NO_FILE).version
    stale = approve_day(config, DAY, by="ann@example.com", at=NOW, seen=NO_FILE)
    assert stale.outcome is Outcome.REFUSED and approval_of(config, DAY) is None
    approved = approve_day(config, DAY, by="ann@example.com", at=NOW, seen=seen)
    assert approved.outcome is Outcome.APPLIED
    approval = approval_of(config, DAY)
    assert approval is not None and approval.by == "ann@example.com" and approval.at == NOW
    load_overrides(config, DAY)  # the approval is part of a valid file
    edit_day(config, DAY, Change(Part.SUBJECT, "New", ""), seen=approved.version)
    assert approval_of(config, DAY) is None and "approved" not in _file(config)
    # approved again, then edited by hand: withdrawn too
    approve_day(config, DAY, by="bob@example.com", at=NOW, seen=read_day(day_path(config, DAY))[0])
    assert approval_of(config, DAY) is not None
    path = day_path(config, DAY)
    path.write_text(path.read_text(encoding="utf-8") + "drop: [b2]\n", encoding="utf-8")
    assert approval_of(config, DAY) is None


def _demo_today(demo_config: Config) -> tuple[Store, desk.Today]:
    store = Store.open(demo_config.database_url)
    collect_all(demo_config, store, now=NOW)
    return store, desk.today(demo_config, store, now=NOW)


def test_a_pin_and_a_move_change_the_email_and_the_subject_and_intro_replace_the_computed(
    demo_config: Config,
) -> None:
    store, shown = _demo_today(demo_config)
    try:
        assert shown.edition is not None and shown.editable
        before = desk.email_of(demo_config, shown.edition)
        last = shown.edition.sections[-1]
        story = last.stories[-1]
        target = shown.edition.sections[0].sector
        seen = shown.version
        for change in [
            Change(Part.MOVE, target.slug, "", story=story.id),
            Change(Part.PIN, "1", "", story=story.id),
            Change(Part.SUBJECT, "Our own subject", ""),
            Change(Part.INTRO, "Good morning from the desk.", ""),
            Change(Part.WHY, "It moves prices.", "", story=story.id),
        ]:
            seen = desk.change_today(demo_config, store, change, seen=seen, now=NOW).version
        after = desk.today(demo_config, store, now=NOW)
        assert after.edition is not None and after.version == seen
        email = desk.email_of(demo_config, after.edition)
        assert email.subject == "Our own subject" and before.subject != email.subject
        assert "Good morning from the desk." in email.html and "It moves prices." in email.html
        first = next(s for s in after.edition.sections if s.sector.slug == target.slug)
        assert first.stories[0].id == story.id  # moved, and pinned to the top of its sector
        assert after.seen(Part.PIN, story.id) == "1"
        assert after.seen(Part.MOVE, story.id) == target.slug
    finally:
        store.close()


def test_a_moved_story_leads_its_new_section_even_when_it_was_full(demo_config: Config) -> None:
    """As the README says: moved, the last story of the last section leads the first one (after
    any pin), in the layout the email is made from, not in its "more" headlines."""
    from newsletter.edition import digest

    store, shown = _demo_today(demo_config)
    try:
        assert shown.edition is not None
        story = shown.edition.sections[-1].stories[-1]
        target = shown.edition.sections[0].sector
        desk.change_today(
            demo_config,
            store,
            Change(Part.MOVE, target.slug, "", story=story.id),
            seen=shown.version,
            now=NOW,
        )
        after = desk.today(demo_config, store, now=NOW)
        assert after.edition is not None
        section = next(s for s in digest.layout(after.edition) if s.sector.slug == target.slug)
        assert section.stories[0].id == story.id
        assert story.id not in {s.id for s in section.more}
    finally:
        store.close()


def test_pins_open_the_brief_in_the_order_pinned_across_sections(demo_config: Config) -> None:
    """A story one outlet carries pinned first, then one carried by more (which would go first
    on its own): the email opens with the first pin."""
    store, shown = _demo_today(demo_config)
    try:
        assert shown.edition is not None
        stories = [story for section in shown.edition.sections for story in section.stories]
        first = next(story for story in stories if story.outlets == 1)
        second = max(stories, key=lambda story: story.outlets)
        assert second.outlets > 1
        seen = shown.version
        for story in (first, second):
            change = Change(Part.PIN, "1", "", story=story.id)
            seen = desk.change_today(demo_config, store, change, seen=seen, now=NOW).version
        after = desk.today(demo_config, store, now=NOW)
        assert after.edition is not None
        text = desk.email_of(demo_config, after.edition).text
        brief = text.split("== Today's brief ==")[1]
        assert -1 < brief.index(first.url) < brief.index(second.url)
    finally:
        store.close()


def test_a_frozen_edition_takes_no_change_nor_approval(demo_config: Config) -> None:
    store, shown = _demo_today(demo_config)
    try:
        subject = Change(Part.SUBJECT, "Kept as sent", "")
        desk.change_today(demo_config, store, subject, seen=shown.version, now=NOW)
        frozen = frozen_edition(demo_config, store, now=NOW, day=shown.day)
        assert frozen.edition.subject == "Kept as sent"  # in the stored snapshot
        stored = store.editions.edition(shown.day)
        assert stored is not None and stored.edition.subject == "Kept as sent"
        assert desk.today(demo_config, store, now=NOW).status is EditionStatus.FROZEN
        with pytest.raises(EditionError, match="can no longer change"):
            desk.change_today(
                demo_config, store, Change(Part.SUBJECT, "x", ""), seen=shown.version, now=NOW
            )
        with pytest.raises(EditionError, match="can no longer change"):
            desk.approve_today(demo_config, store, by="a@example.com", seen=shown.version, now=NOW)
    finally:
        store.close()


def test_a_test_copy_goes_to_the_editor_through_the_mailer_and_not_the_ledger(
    demo_config: Config,
) -> None:
    from newsletter.delivery.mailers import make_mailer

    store, _ = _demo_today(demo_config)
    mailer = make_mailer(demo_config)
    try:
        desk.send_test_copy(demo_config, store, mailer, to="ed@example.com", now=NOW)
        assert store.editions.edition_ref(DAY) is None  # nothing stored, nothing in a ledger
    finally:
        mailer.close()
        store.close()
    copies = list(demo_config.outbox_dir.rglob("*.eml"))
    assert len(copies) == 1
    text = copies[0].read_text(encoding="utf-8")
    assert "ed@example.com" in text and "[TEST]" in text


def test_the_gate_waits_until_the_deadline_and_an_approval_opens_it(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        {
            "schedule": {
                "send_at": "07:00",
                "timezone": "Europe/London",
                "require_approval": {"deadline": "08:30", "on_timeout": "send"},
            }
        },
    )
    config = load_config(path)
    at = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
    state = desk.gate(config, DAY, at)
    assert state.state is desk.Waiting.WAITING
    assert "until 08:30 (Europe/London), then send" in state.says()
    late = desk.gate(config, DAY, at + timedelta(hours=2))
    assert late.state is desk.Waiting.TIMED_OUT and "sent without an approval" in late.says()
    approve_day(config, DAY, by="ann@example.com", at=at, seen=NO_FILE)
    assert desk.gate(config, DAY, at + timedelta(hours=2)).state is desk.Waiting.APPROVED
    off = load_config(write_config(tmp_path / "off", {}))
    assert desk.gate(off, DAY, at).state is desk.Waiting.NOT_REQUIRED


def test_a_deadline_before_the_send_is_a_config_error(tmp_path: Path) -> None:
    path = write_config(
        tmp_path, {"schedule": {"send_at": "07:00", "require_approval": {"deadline": "06:00"}}}
    )
    with pytest.raises(ConfigError, match="must come after send_at"):
        load_config(path)


def test_the_preview_s_moves_and_the_desk_s_pins_at_once_are_all_kept(config: Config) -> None:
    start = threading.Barrier(20)

    def move(i: int) -> None:
        start.wait()
        save_move(config, DAY, f"m{i}", "oil-gas")

    def pin(i: int) -> None:
        start.wait()
        edit_day(config, DAY, Change(Part.PIN, "1", "", story=f"p{i}"), seen=NO_FILE)

    threads = [threading.Thread(target=f, args=(i,)) for i in range(10) for f in (move, pin)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    data = _file(config)
    assert data["move"] == {f"m{i}": "oil-gas" for i in range(10)}
    assert sorted(data["pin"]) == sorted(f"p{i}" for i in range(10))
