"""A reader's watchlist (issue 29): the day's stories naming what the reader follows appear
first under "Your watchlist", whatever their sector; whole words, any case, the publisher's
aliases; a watchlist that finds nothing leaves no block; each variant is rendered once
however many watchlists its readers have (the blocks are spliced in)."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import datetime
from pathlib import Path

import pytest

from newsletter import flows
from newsletter.config import Config, load_config
from newsletter.delivery.mailers import make_mailer
from newsletter.flows.build import build
from newsletter.readers.subscriptions import add_subscriber
from newsletter.readers.timing import checked_watchlist
from newsletter.store import Store
from tests.conftest import NOW, write_config
from tests.test_send import FEEDS, clock

GIGA = "Sodium-ion battery cells enter mass production at a new gigafactory"


def _config(tmp_path: Path, **watchlist: object) -> Config:
    settings = {"backend": "outbox", "batch_size": 50, "preflight": False}
    data: dict[str, object] = {"feeds": FEEDS, "delivery": settings}
    if watchlist:
        data["watchlist"] = watchlist
    return load_config(write_config(tmp_path, data))


def _send(config: Config, readers: dict[str, tuple[list[str], list[str]]]) -> dict[str, str]:
    """Send the day's edition to these readers (address: sectors, watchlist); each reader's
    HTML and text, joined, by address."""
    store = Store.open(config.database_url)
    flows.collect_all(config, store, now=NOW)
    for address, (sectors, terms) in readers.items():
        add_subscriber(
            store,
            address,
            sectors=sectors,
            known_sectors=config.sector_slugs,
            now=NOW,
            watchlist=terms,
        )
    report = flows.send_edition(config, store, make_mailer(config), now=clock)
    store.close()
    assert report.sent == len(readers)
    out = {}
    for path in config.outbox_dir.glob("*/*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        parts = [p.get_content() for p in message.walk() if p.get_content_maintype() == "text"]
        out[str(message["To"]).split("<")[-1].rstrip(">")] = "\n".join(parts)
    return out


def test_a_term_finds_a_story_outside_the_readers_sectors_first_under_your_watchlist(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path)
    mail = _send(
        config,
        {
            "oil@example.com": (["oil-gas"], ["gigafactory"]),
            "plain@example.com": (["oil-gas"], []),
        },
    )
    watching, plain = mail["oil@example.com"], mail["plain@example.com"]
    assert "Your watchlist" in watching and GIGA in watching
    assert watching.index("Your watchlist") < watching.index("Oil &amp; Gas")  # first
    assert "EVs &amp; Battery Technology</h2>" not in watching  # not the reader's sector
    assert "gigafactory</p>" in watching  # the term that found it
    assert "== Your watchlist ==" in watching  # and in the text part,
    assert re.search(r"Good morning[^\n]*\.\n\n== Your watchlist ==", watching)  # its own lines
    assert "#watchlist" in watching and "/preferences/" in watching  # the footer's link
    assert GIGA not in plain and "Your watchlist</h2>" not in plain


def test_a_watchlist_that_finds_nothing_leaves_no_block(tmp_path: Path) -> None:
    config = _config(tmp_path)
    mail = _send(config, {"r@example.com": ([], ["Quetzalcoatl Holdings", "unobtainium"])})
    text = mail["r@example.com"]
    assert "Your watchlist</h2>" not in text and "== Your watchlist ==" not in text
    assert "%%" not in text  # no marker left behind


def test_whole_words_any_case_and_the_publishers_aliases(tmp_path: Path) -> None:
    config = _config(tmp_path, aliases={"Sodium cells": ["SODIUM-ION"]})
    mail = _send(
        config,
        {
            "alias@example.com": (["oil-gas"], ["sodium cells"]),  # the alias finds it
            "part@example.com": (["oil-gas"], ["gigafact"]),  # a part of a word: nothing
            "case@example.com": (["oil-gas"], ["GIGAFACTORY"]),
        },
    )
    assert GIGA in mail["alias@example.com"] and GIGA in mail["case@example.com"]
    assert GIGA not in mail["part@example.com"]


def test_each_reader_sees_only_their_own_terms_for_a_story_others_follow_too(
    tmp_path: Path,
) -> None:
    """Three readers whose different terms find the same story: each block names its reader's
    own term (a block made once per set of stories named the first reader's to everyone)."""
    config = _config(tmp_path)
    terms = {
        "a@example.com": "gigafactory",
        "b@example.com": "Sodium-ion",
        "c@example.com": "cells",
    }
    mail = _send(config, {address: ([], [term]) for address, term in terms.items()})
    for address, term in terms.items():
        block = mail[address].split("== Your watchlist ==")[1].split("==")[0]
        assert GIGA in block and f"; {term}" in block, (address, block)
        assert all(f"; {other}" not in block for other in terms.values() if other != term)


def test_a_term_s_brackets_markup_emoji_and_hyphens_do_not_stop_it_matching(
    tmp_path: Path,
) -> None:
    """What a reader types around a name is no part of it: brackets, a tag, an emoji; and a
    space matches a hyphen ("sodium ion" finds "Sodium-ion") as the sector rules read them."""
    config = _config(tmp_path)
    typed = ["(gigafactory)", "<b>gigafactory</b>", "gigafactory 🔋", "sodium ion", "'Sodium-Ion'"]
    mail = _send(config, {f"r{n}@example.com": ([], [term]) for n, term in enumerate(typed)})
    for n, term in enumerate(typed):
        assert "== Your watchlist ==" in mail[f"r{n}@example.com"], term
        block = mail[f"r{n}@example.com"].split("== Your watchlist ==")[1].split("==")[0]
        assert GIGA in block, term


def test_terms_are_text_and_are_checked() -> None:
    assert checked_watchlist("Tesla, tesla; CATL\nLithium") == ("Tesla", "CATL", "Lithium")
    with pytest.raises(ValueError, match="at most 10"):
        checked_watchlist([f"term{n}" for n in range(11)])
    with pytest.raises(ValueError, match="no letter or digit"):
        checked_watchlist(["<>"])
    with pytest.raises(ValueError, match="no letter or digit"):
        checked_watchlist(["<b></b>"])  # markup only: it would name nothing


def test_a_hostile_term_is_shown_as_text(tmp_path: Path) -> None:
    config = _config(tmp_path)
    mail = _send(config, {"r@example.com": ([], ["gigafactory", "<b onmouseover=x>sodium"])})
    assert "<b onmouseover" not in mail["r@example.com"]


def test_one_render_per_variant_whatever_the_watchlists(tmp_path: Path) -> None:
    from newsletter.delivery.variants import Variants
    from newsletter.models import Subscriber
    from newsletter.records import Claim

    config = _config(tmp_path)
    store = Store.open(config.database_url)
    flows.collect_all(config, store, now=NOW)
    edition = build(config, store, now=NOW).edition
    store.close()
    assert edition is not None
    variants = Variants(config, edition)
    terms = [["gigafactory"], ["sodium-ion"], [], ["nothing at all"], ["gigafactory", "cells"]]
    claims = [
        Claim(n, Subscriber(n, f"r{n}@example.com", token=f"t{n}", watchlist=tuple(t)))
        for n, t in enumerate(terms * 20)
    ]
    calls, skipped = variants.batches(claims, edition_id=1, day=datetime.now().date())
    assert variants.rendered == 1 and not skipped  # one choice of sectors: one render
    (call,) = calls  # one variant, one call: each reader's block goes with their values
    blocks = {r.values.get("watchlist", "") for r in call.recipients}
    # one block per story found and the terms that found it (each reader's own words): three
    # for the hundred readers; "" and "nothing at all" none
    assert "" in blocks and len(blocks) == 4
    assert all("Your watchlist</h2>" in b for b in blocks if b)


def test_a_frozen_editions_variants_are_kept_and_the_next_pass_renders_none(
    tmp_path: Path,
) -> None:
    from newsletter.delivery.variants import Variants
    from newsletter.models import Subscriber
    from newsletter.records import Claim

    config = _config(tmp_path)
    _send(config, {"a@example.com": (["oil-gas"], []), "b@example.com": ([], ["gigafactory"])})
    store = Store.open(config.database_url)
    stored = store.editions.edition(NOW.date())
    assert stored is not None
    kept = store.variants.stored_variants(stored.id)
    assert set(kept) == {("oil-gas",), ()}  # each choice of sectors, once
    again = Variants(config, stored.edition, store, stored.id)
    claims = [Claim(1, Subscriber(1, "c@example.com", sectors=("oil-gas",), token="t"))]
    calls, _ = again.batches(claims, edition_id=stored.id, day=NOW.date())
    assert again.rendered == 0 and calls[0].email.html == kept[("oil-gas",)].html
    store.close()
