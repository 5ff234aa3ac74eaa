"""The desk's working pages through the real app on 127.0.0.1: today's edition (each change a
form, two editors at once, the approval, a test copy), the sent editions' numbers, the feeds'
health with "retry now", and the readers (find, add, unsubscribe, erase, import, export).
Every POST is audited; a GET changes nothing; no page shows a reader's token."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from html import unescape
from pathlib import Path

import pytest

from newsletter import flows
from newsletter.config.dayedits import day_path, read_day
from newsletter.delivery.mailers import make_mailer
from newsletter.models import AuditAction, EventKind, SubscriberStatus
from newsletter.readers.subscriptions import add_subscriber
from newsletter.records import ProviderEvent
from tests.conftest import DEMO, NOW
from tests.desk import EDITOR, DeskSite, csrf_of, desk_site, post_form

FEEDS = [{"name": p.stem, "url": str(p)} for p in sorted((DEMO / "feeds").glob("*.xml"))]
YESTERDAY = NOW - timedelta(days=1)
SETTINGS: dict[str, object] = {"feeds": FEEDS, "digest": {"max_age_hours": 1000000}}


@pytest.fixture
def site(tmp_path: Path) -> Iterator[DeskSite]:
    with desk_site(tmp_path / "desk", SETTINGS) as started:
        flows.collect_all(started.config, started.store, now=NOW)
        yield started


def _forms(html: str) -> list[dict[str, str]]:
    """Each form of a page: its action and its fields' values (hidden, text, selected)."""
    found = []
    for match in re.finditer(r'<form[^>]*action="([^"]+)"(.*?)</form>', html, re.S):
        fields = {"action": match[1]}
        for name, value in re.findall(r'<input[^>]*name="(\w+)"[^>]*value="([^"]*)"', match[2]):
            fields[name] = unescape(value)
        selected = re.search(r'<option value="([^"]*)" selected', match[2])
        if selected:
            fields["value"] = selected[1]
        found.append(fields)
    return found


def _form(html: str, action: str, **match: str) -> dict[str, str]:
    return next(
        f
        for f in _forms(html)
        if f["action"] == action and all(f.get(k) == v for k, v in match.items())
    )


def _subject(html: str) -> str:
    found = re.search(r'<strong id="subject-line">(.*?)</strong>', html)
    assert found, html[:2000]
    return unescape(found[1])


def _audited(site: DeskSite) -> list[AuditAction]:
    return [entry.action for entry in site.store.editors.audit_log()]


def test_pin_and_move_change_the_email_and_the_file(site: DeskSite) -> None:
    client = site.sign_in()
    page = client.get("/desk/today")
    assert page.status_code == 200 and "srcdoc=" in page.text
    before = _subject(page.text)
    last = re.findall(r'<article class="story" id="story-([^"]+)"', page.text)[-1]
    move = _form(page.text, "/desk/today/change", part="move", story=last)
    first_sector = site.config.sector_slugs[0]
    moved = client.post("/desk/today/change", data={**move, "value": first_sector})
    assert moved.status_code == 303 and "done=applied" in moved.headers["location"]
    page = client.get(moved.headers["location"])
    assert "Saved: the email below shows it." in page.text
    pin = _form(page.text, "/desk/today/change", part="pin", story=last)
    assert client.post("/desk/today/change", data=pin).status_code == 303
    subject = _form(client.get("/desk/today").text, "/desk/today/change", part="subject")
    client.post("/desk/today/change", data={**subject, "value": "Our subject today"})
    page = client.get("/desk/today")
    assert _subject(page.text) == "Our subject today" != before
    brief = page.text.split('id="sector-brief"')[1]  # pinned: it opens the email
    assert re.search(r'id="story-([^"]+)"', brief)[1] == last  # type: ignore[index]
    _, data = read_day(day_path(site.config, NOW.date()))
    assert data == {"move": {last: first_sector}, "pin": [last], "subject": "Our subject today"}
    assert _audited(site).count(AuditAction.EDITION_CHANGED) == 3


def test_a_change_the_file_cannot_take_is_told_in_the_desk_s_words(site: DeskSite) -> None:
    client = site.sign_in()
    page = client.get("/desk/today").text
    story = re.findall(r'<article class="story" id="story-([^"]+)"', page)[0]
    pin = _form(page, "/desk/today/change", part="pin", story=story)
    unknown = client.post("/desk/today/change", data={**pin, "story": "deadbeefdeadbeef"})
    assert unknown.status_code == 422
    assert "no story deadbeefdeadbeef in today" in unescape(unknown.text)
    note = _form(page, "/desk/today/change", part="notes", story=story)
    long = client.post("/desk/today/change", data={**note, "value": "x" * 400})
    assert long.status_code == 422
    said = unescape(long.text)
    assert "Why it matters: must be at most 300 characters long, got 400" in said
    assert str(site.config.overrides_dir) not in said and "String should" not in said
    assert not day_path(site.config, NOW.date()).exists()  # nothing written


def test_two_editors_at_once_both_kept_or_the_second_told(site: DeskSite) -> None:
    ann, bob = site.sign_in(), site.sign_in()
    seen_by_ann, seen_by_bob = ann.get("/desk/today").text, bob.get("/desk/today").text
    subject = _form(seen_by_ann, "/desk/today/change", part="subject")
    assert ann.post("/desk/today/change", data={**subject, "value": "Ann's"}).status_code == 303
    # Bob's page is older: the same part is refused and he is told what is there now
    subject = _form(seen_by_bob, "/desk/today/change", part="subject")
    refused = bob.post("/desk/today/change", data={**subject, "value": "Bob's"})
    assert refused.status_code == 409
    text = unescape(refused.text)
    assert "another editor changed the subject" in text and "it is now “Ann's”" in text
    assert "Yours was “Bob's”" in text
    # another part, from the same old page: applied on top, both kept, and said so
    intro = _form(seen_by_bob, "/desk/today/change", part="intro")
    on_top = bob.post("/desk/today/change", data={**intro, "value": "Bob's intro"})
    assert "done=on-top" in on_top.headers["location"]
    assert "both changes are kept" in bob.get(on_top.headers["location"]).text
    _, data = read_day(day_path(site.config, NOW.date()))
    assert data == {"subject": "Ann's", "intro": "Bob's intro"}


def test_approve_then_a_change_withdraws_it(tmp_path: Path) -> None:
    settings = {
        **SETTINGS,
        "schedule": {"send_at": "07:00", "require_approval": {"deadline": "08:00"}},
    }
    with desk_site(tmp_path / "desk", settings) as site:
        flows.collect_all(site.config, site.store, now=NOW)
        client = site.sign_in()
        page = client.get("/desk/today").text
        assert "waiting for an editor&#39;s approval until 08:00 (UTC), then skip" in page
        approved = client.post("/desk/today/approve", data=_form(page, "/desk/today/approve"))
        assert approved.status_code == 303
        page = client.get(approved.headers["location"]).text
        assert f"approved by {EDITOR} at 06:00" in page and "/desk/today/approve" not in page
        note = _form(page, "/desk/today/change", part="note")
        changed = client.post("/desk/today/change", data={**note, "value": "Closed Thursday."})
        page = unescape(client.get(changed.headers["location"]).text)
        assert "waiting for an editor's approval" in page
        # the editor is told their change withdrew it, and the audit log says so
        assert "Your change withdrew the approval the edition had" in " ".join(page.split())
        assert "(withdrew the approval)" in site.store.editors.audit_log()[0].detail
        approved = client.post("/desk/today/approve", data=_form(page, "/desk/today/approve"))
        page = client.get(approved.headers["location"]).text
        withdraw = client.post("/desk/today/withdraw", data=_form(page, "/desk/today/withdraw"))
        assert withdraw.status_code == 303  # withdrawn by hand: it waits again
        page = unescape(client.get(withdraw.headers["location"]).text)
        assert "waiting for an editor's approval" in page and "approval is withdrawn" in page
        stale = _form(page, "/desk/today/approve") | {"version": "0123456789abcdef"}
        assert client.post("/desk/today/approve", data=stale).status_code == 409
        audited = _audited(site)
        assert AuditAction.EDITION_APPROVED in audited
        assert AuditAction.EDITION_APPROVAL_WITHDRAWN in audited


def test_a_test_copy_goes_to_the_editor_only(site: DeskSite) -> None:
    client = site.sign_in()
    sent = post_form(client, "/desk/today/test", {}, page="/desk/today")
    assert sent.status_code == 303
    copies = list(site.config.outbox_dir.rglob("*.eml"))
    assert len(copies) == 1 and f"To: {EDITOR}" in copies[0].read_text(encoding="utf-8")
    assert "[TEST]" in copies[0].read_text(encoding="utf-8")
    assert site.store.editions.edition_ref(NOW.date()) is None  # no edition, no ledger
    assert AuditAction.TEST_SENT in _audited(site)


def test_a_sent_edition_shows_its_numbers_and_most_clicked(site: DeskSite) -> None:
    readers = [
        add_subscriber(site.store, f"r{i}@example.com", known_sectors=(), now=YESTERDAY)[0]
        for i in range(4)
    ]
    flows.send_edition(site.config, site.store, make_mailer(site.config), now=lambda: NOW)
    ref = site.store.editions.edition_ref(NOW.date())
    stored = site.store.editions.edition(NOW.date())
    assert ref is not None and stored is not None
    top = stored.edition.sections[0].stories[0]
    found = [
        ProviderEvent(f"{kind}-{r.id}", kind, NOW, edition_id=ref.id, subscriber_id=r.id, url=url)
        for r in readers
        for kind, url in ((EventKind.DELIVERED, ""), (EventKind.CLICK, top.url))
    ]
    site.store.events.record_events(found[:-1], now=NOW)  # the last reader did not click
    client = site.sign_in()
    page = client.get("/desk/editions").text
    assert 'id="chart"' in page
    row = re.search(rf'href="/desk/editions/{NOW.date()}">.*?</tr>', page)
    assert row and re.findall(r'class="n">(\d+)<', row[0]) == ["4", "4", "0", "0", "0", "0", "3"]
    detail = client.get(f"/desk/editions/{NOW.date()}").text
    assert f'href="/archive/{NOW.date()}"' in detail
    assert unescape(top.title) in unescape(detail) and "<td>3</td>" in detail
    assert client.get("/desk/editions/2001-01-01").status_code == 404


def test_a_failing_feed_is_retried_now(tmp_path: Path) -> None:
    missing = tmp_path / "later.xml"
    settings: dict[str, object] = {
        **SETTINGS,
        "feeds": [*FEEDS[:1], {"name": "Later", "url": str(missing)}],
    }
    with desk_site(tmp_path / "desk", settings) as site:
        flows.collect_all(site.config, site.store, now=NOW)
        client = site.sign_in()
        page = client.get("/desk/feeds").text
        assert "failing</span>, 1 in a row" in page and page.count("Retry now</button>") == 1
        again = post_form(client, "/desk/feeds/retry", {"url": str(missing)}, page="/desk/feeds")
        assert again.status_code == 502 and "Later: still failing" in again.text
        missing.write_bytes((DEMO / "feeds" / FEEDS[1]["url"].split("/")[-1]).read_bytes())
        fixed = post_form(client, "/desk/feeds/retry", {"url": str(missing)}, page="/desk/feeds")
        assert fixed.status_code == 200 and "Later: fetched now (ok)" in fixed.text
        assert "Retry now</button>" not in fixed.text
        assert _audited(site).count(AuditAction.FEED_RETRIED) == 2


def test_readers_found_added_unsubscribed_and_erased(site: DeskSite) -> None:
    for name in ("ana", "anabel", "bob"):
        add_subscriber(site.store, f"{name}@example.com", known_sectors=(), now=NOW)
    client = site.sign_in()
    found = client.get("/desk/readers", params={"q": "ana"}).text
    assert "ana@example.com" in found and "anabel@example.com" in found and "bob@" not in found
    assert "3 confirmed" in found
    added = post_form(
        client,
        "/desk/readers/add",
        {
            "email": "Cy@Example.com",
            "name": "Cy",
            "sectors": "oil-gas",
            "status": SubscriberStatus.PENDING.value,
        },
        page="/desk/readers",
    )
    assert added.status_code == 303
    page = client.get(added.headers["location"]).text
    assert "cy@example.com" in page and "Oil" in page and "desk " + EDITOR in unescape(page)
    reader = site.store.readers.subscriber_by_email("cy@example.com")
    assert reader is not None and reader.status == SubscriberStatus.PENDING
    gone = post_form(
        client, f"/desk/readers/{reader.id}/unsubscribe", {}, page=f"/desk/readers/{reader.id}"
    )
    assert gone.status_code == 303
    after = site.store.readers.subscriber_by_id(reader.id)
    assert after is not None and after.status == SubscriberStatus.UNSUBSCRIBED
    confirm = client.get(f"/desk/readers/{reader.id}/erase")
    assert confirm.status_code == 200 and site.store.readers.subscriber_by_id(reader.id)
    erased = client.post(f"/desk/readers/{reader.id}/erase", data={"csrf": csrf_of(confirm.text)})
    assert erased.status_code == 200 and "is erased" in erased.text
    assert site.store.readers.subscriber_by_id(reader.id) is None
    assert site.store.readers.is_suppressed("cy@example.com")
    assert client.get(f"/desk/readers/{reader.id}").status_code == 404
    actions = _audited(site)
    for action in (
        AuditAction.READER_ADDED,
        AuditAction.READER_UNSUBSCRIBED,
        AuditAction.READER_ERASED,
    ):
        assert action in actions


def test_a_csv_import_reports_line_by_line_and_the_export_gives_the_list(site: DeskSite) -> None:
    client = site.sign_in()
    page = client.get("/desk/readers").text
    csv = (
        b"email,name,sectors\nann@example.com,Ann,oil-gas\n"
        b"not-an-address,X,\nbob@example.com,Bob,oil\n"
    )
    answer = client.post(
        "/desk/readers/import",
        data={"csrf": csrf_of(page)},
        files={"file": ("list.csv", csv, "text/csv")},
    )
    assert answer.status_code == 200, answer.text[:2000]
    text = unescape(answer.text)
    assert "line 3:" in text and "line 4:" in text and "did you mean 'oil-gas'" in text
    assert "1 added, 0 updated, 0 unchanged, 0 skipped, 2 rejected" in text
    ann = site.store.readers.subscriber_by_email("ann@example.com")
    assert ann is not None
    events = site.store.readers.events_of(ann.id)
    assert str(events[0].source) == f"import list.csv (desk: {EDITOR})"
    no_csrf = client.post("/desk/readers/import", files={"file": ("l.csv", csv, "text/csv")})
    assert no_csrf.status_code == 403
    exported = client.post("/desk/readers/export", data={"csrf": csrf_of(page), "status": ""})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert exported.text.splitlines() == [
        "email,name,sectors,status,timezone,hour,frequency,weekday,watchlist",
        "ann@example.com,Ann,oil-gas,confirmed,,,daily,,",
    ]
    assert AuditAction.READERS_IMPORTED in _audited(site)
    assert AuditAction.READERS_EXPORTED in _audited(site)


def test_no_get_changes_anything_and_no_page_shows_a_token(site: DeskSite) -> None:
    readers = [
        add_subscriber(site.store, f"t{i}@example.com", known_sectors=(), now=NOW)[0]
        for i in range(3)
    ]
    flows.send_edition(site.config, site.store, make_mailer(site.config), now=lambda: NOW)
    stored = site.store.editions.edition(NOW.date())
    assert stored is not None
    story = stored.edition.sections[0].stories[0]
    tomorrow = day_path(site.config, NOW.date() + timedelta(days=1))
    tomorrow.parent.mkdir(parents=True, exist_ok=True)
    tomorrow.write_text(f"move: {{{story.id}: oil-gas}}\n", encoding="utf-8")
    labels = site.store.stories.labels()
    site.clock.now = NOW + timedelta(days=1)  # tomorrow's page: an edition, and a move
    client = site.sign_in()
    paths = [
        "/desk/today",
        "/desk/editions",
        f"/desk/editions/{NOW.date()}",
        "/desk/feeds",
        "/desk/readers?q=t",
        *(f"/desk/readers/{r.id}" for r in readers),
        *(f"/desk/readers/{r.id}/erase" for r in readers),
    ]
    audit_before = len(site.store.editors.audit_log())
    file_before = read_day(tomorrow)
    for path in paths:
        answer = client.get(path)
        assert answer.status_code == 200, path
        for reader in readers:
            assert reader.token not in answer.text, path
    assert read_day(tomorrow) == file_before
    assert site.store.stories.labels() == labels  # the move is kept as a label by a send
    assert len(site.store.editors.audit_log()) == audit_before
    assert all(site.store.readers.subscriber_by_id(r.id) for r in readers)


def test_a_post_without_the_csrf_token_is_refused(site: DeskSite) -> None:
    client = site.sign_in()
    client.get("/desk/today")
    for path in (
        "/desk/today/change",
        "/desk/today/approve",
        "/desk/today/test",
        "/desk/feeds/retry",
        "/desk/readers/add",
        "/desk/readers/export",
    ):
        answer = client.post(path, data={"csrf": "wrong-token-0123456789", "part": "subject"})
        assert answer.status_code == 403, path
    assert read_day(day_path(site.config, NOW.date()))[1] == {}


def test_a_hand_edit_of_the_file_shows_at_once(site: DeskSite) -> None:
    """The page keeps the edition it built only while the file (and the stories) stay."""
    client = site.sign_in()
    before = _subject(client.get("/desk/today").text)
    path = day_path(site.config, NOW.date())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("subject: Written by hand\n", encoding="utf-8")
    assert _subject(client.get("/desk/today").text) == "Written by hand" != before
    path.unlink()
    assert _subject(client.get("/desk/today").text) == before


def test_a_hand_edit_that_is_not_yaml_is_reported_on_the_page(site: DeskSite) -> None:
    """A bracket left open by hand: the page names the file and the line (as it does a wrong
    value), not a bare server error; and a change refuses to overwrite the file."""
    client = site.sign_in()
    page = client.get("/desk/today").text
    path = day_path(site.config, NOW.date())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("note: Hello readers\npin: [abc\nmove: {x: nosuch}\n", encoding="utf-8")
    shown = client.get("/desk/today")
    text = " ".join(unescape(shown.text).split())
    assert "Today's edition" in text and f"{path.name}, line 2: not valid YAML" in text
    assert "Check the indentation, quoting and brackets" in text
    assert "Traceback" not in text
    form = _form(page, "/desk/today/change", part="note")
    answer = client.post("/desk/today/change", data={**form, "value": "Hello"})
    assert "line 2: not valid YAML" in " ".join(unescape(answer.text).split())
    assert path.read_text(encoding="utf-8").startswith("note: Hello readers\npin: [abc")


def test_a_broken_file_on_a_desk_that_needs_approvals_is_reported_too(tmp_path: Path) -> None:
    """With schedule.require_approval the change first looks at the approval (in the same
    file): a file that is not YAML is named there too, not a bare server error."""
    approval = {"deadline": "08:00"}
    settings = {**SETTINGS, "schedule": {"send_at": "07:00", "require_approval": approval}}
    with desk_site(tmp_path / "desk", settings) as site:
        flows.collect_all(site.config, site.store, now=NOW)
        client = site.sign_in()
        form = _form(client.get("/desk/today").text, "/desk/today/change", part="note")
        path = day_path(site.config, NOW.date())
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("note: [open\n", encoding="utf-8")
        answer = client.post("/desk/today/change", data={**form, "value": "Hello"})
        assert "line 1: not valid YAML" in " ".join(unescape(answer.text).split())


def _email_blocks(text: str) -> dict[str, list[str]]:
    """The plain-text email's blocks ("Today's brief", each sector, "Read more insights"), each
    with the links of the stories it shows, in order (a story's own, not its other reports')."""
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    story = False  # a story began and its own link is still to come
    for line in text.splitlines():
        if line.startswith("== ") and line.endswith(" =="):
            current, story = blocks.setdefault(line[3:-3], []), False
        elif line[:2] in ("* ", "- "):
            story = True
        elif current is not None and story and line.startswith("  http"):
            current.append(line.strip())
            story = False
    return blocks


def _desk_groups(html: str) -> dict[str, list[tuple[str, bool]]]:
    """The desk's "The stories" list: each group's heading, its stories' links, and whether
    each is labelled as one of the "more" headlines."""
    stories = html.split('id="stories-title"')[1].split("</section>")[0]
    groups: dict[str, list[tuple[str, bool]]] = {}
    for part in re.split(r"<h3 [^>]*>", stories)[1:]:
        heading, rest = part.split("</h3>", 1)
        groups[unescape(heading)] = [
            (unescape(link), "in “more”" in meta)
            for link, meta in re.findall(
                r'<h4><a href="([^"]*)">.*?</a></h4>\s*<p class="meta">(.*?)</p>', rest, re.S
            )
        ]
    return groups


def test_the_stories_list_is_the_email_s_brief_sections_and_more(site: DeskSite) -> None:
    """Each story the email shows is listed where the email has it: the brief's first, under
    its own heading; each section's leads; the "more" headlines labelled so."""
    from newsletter.flows import desk as desk_flows

    client = site.sign_in()
    html = client.get("/desk/today").text
    today = desk_flows.today(site.config, site.store, now=NOW)
    assert today.edition is not None
    blocks = _email_blocks(desk_flows.email_of(site.config, today.edition).text)
    groups = _desk_groups(html)
    brief = next(name for name in blocks if name in ("Today's brief", "Top story"))
    assert [link for link, _ in groups[brief]] == blocks[brief]
    listed_more = {link for rows in groups.values() for link, is_more in rows if is_more}
    assert listed_more == set(blocks.get("Read more insights", []))
    for sector in site.config.sectors:
        leads = [link for link, is_more in groups.get(sector.name, []) if not is_more]
        assert leads == blocks.get(sector.name, []), sector.name


def test_dropped_stories_are_listed_by_headline_and_a_refusal_names_the_story(
    site: DeskSite,
) -> None:
    client = site.sign_in()
    page = client.get("/desk/today").text
    story_id, title = re.findall(
        r'<article class="story" id="story-([^"]+)">\s*<h4><a href="[^"]*">(.*?)</a>', page
    )[-1]
    title = unescape(title)
    drop = _form(page, "/desk/today/change", part="drop", story=story_id)
    assert client.post("/desk/today/change", data=drop).status_code == 303
    dropped = unescape(client.get("/desk/today").text).split('id="dropped-title"')[1]
    assert title in dropped and f'aria-label="Undrop: {title}' in dropped
    note = _form(
        page,
        "/desk/today/change",
        part="notes",
        story=re.findall(r'<article class="story" id="story-([^"]+)"', page)[0],
    )
    client.post("/desk/today/change", data={**note, "value": "First editor's line"})
    late = client.post("/desk/today/change", data={**note, "value": "Second editor's line"})
    assert late.status_code == 409
    alert = re.search(r'<p class="error" role="alert">(.*?)</p>', late.text, re.S)
    said = " ".join(unescape(alert[1] if alert else "").split())
    assert "another editor changed “why it matters” of “" in said and note["story"] not in said
