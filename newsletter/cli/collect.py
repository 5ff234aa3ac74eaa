"""``newsletter collect`` and ``newsletter stories`` (with ``--explain``)."""

from __future__ import annotations

import json
from datetime import UTC, timedelta

import click
from rich.markup import escape
from rich.table import Column

from newsletter import flows
from newsletter.cli.common import (
    State,
    check_slugs,
    current_time,
    make_table,
    pass_state,
    print_collect,
)
from newsletter.errors import FeedError
from newsletter.flows import prepare as prepared
from newsletter.models import FetchOutcome
from newsletter.sectors.model import SectorModel


@click.command()
@click.option("--retry-gone", is_flag=True, help="Fetch feeds that answered 410 Gone again.")
@click.option(
    "--teasers",
    is_flag=True,
    help="Then read the article pages of new stories whose feed gave no teaser worth showing "
    "(`newsletter run` does it after each collection).",
)
@pass_state
def collect(state: State, retry_gone: bool, teasers: bool) -> None:
    """Fetch every feed once and store new stories.

    Prints one line per feed: new stories and stories in the feed, "not modified", or the error.
    Exits 1 only when every feed failed. Article pages are not read here unless --teasers
    asks for it: the collection returns as soon as its feeds are stored.

    Example: newsletter --config examples/demo/config.yaml collect
    """
    config = state.config
    store = state.store()
    try:
        now = current_time()
        report = flows.collect_all(config, store, now=now, retry_gone=retry_gone)
        if teasers:
            pages = flows.fetch_teasers(config, store, now=now)
            waiting = 0
        else:
            pages, waiting = 0, flows.teasers_waiting(config, store, now=now)
    finally:
        store.close()
    print_collect(state.console, report)
    if pages:
        state.console.print(f"Teasers: read {pages:,} article page{'s' * (pages != 1)}.")
    if waiting:
        stories = "1 story waits" if waiting == 1 else f"{waiting:,} stories wait"
        state.console.print(
            f"{stories} for a teaser from the article page: `newsletter collect --teasers` "
            f"reads them now; `newsletter run` reads them after each collection."
        )
    results = report.results
    if results and all(r.status in {FetchOutcome.FAILED, FetchOutcome.GONE} for r in results):
        raise FeedError(
            f"none of the {len(results)} feeds could be collected",
            hint="Check the network and the feed URLs in the config; `newsletter status` "
            "lists each feed's last error.",
        )


@click.command()
@click.option(
    "--since", type=click.FloatRange(min=0), help="Only stories published in the last HOURS."
)
@click.option("--sector", "sector", metavar="SLUG", help="Only stories that fit this sector.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@click.option("--explain", "explain", metavar="ID", help="Show why one story got its sectors.")
@pass_state
def stories(
    state: State, since: float | None, sector: str | None, as_json: bool, explain: str | None
) -> None:
    """List stored stories with their sectors, best first; --explain ID shows the matched
    phrases and weights, exclusions and the off-topic score behind one story's sectors.

    Example: newsletter stories --since 24 --sector oil-gas --json
    """
    if explain is not None:
        print_explanation(state, explain)
        return
    config = state.config
    if sector is not None:
        check_slugs(config, [sector], "--sector")
    store = state.store()
    try:
        cutoff = current_time() - timedelta(hours=since) if since is not None else None
        items = prepared.load_stories(config, store, since=cutoff)
    finally:
        store.close()
    if sector is not None:
        items = [s for s in items if sector in s.sectors]
    if as_json:
        payload = [
            {
                "id": s.id,
                "title": s.title,
                "url": s.url,
                "source": s.source,
                "published": s.published.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                "summary": s.summary,
                "sectors": list(s.sectors),
            }
            for s in items
        ]
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    # the id under the date: both whole at any width, the id ready for --explain and the
    # overrides; the sectors under the headline
    table = make_table(
        Column("published (UTC)\nid", no_wrap=True),
        Column("source", max_width=24),
        "title\nsectors",
    )
    for s in items:
        table.add_row(
            f"{s.published:%Y-%m-%d %H:%M}\n{s.id}",
            escape(s.source),
            f"{escape(s.title)}\n[dim]{escape(', '.join(s.sectors) or 'no sector')}[/]",
        )
    state.console.print(table)
    state.console.print(f"{len(items)} stories")


def print_explanation(state: State, story_id: str) -> None:
    """Print why the rules give one stored story its sectors."""
    store = state.store()
    try:
        story, verdict = flows.explain_story(state.config, store, story_id)
        stored = store.stories.latest_model()
    finally:
        store.close()
    console = state.console
    console.print(f"[bold]{escape(story.title)}[/bold]")
    console.print(f"{escape(story.source)} · {story.published:%Y-%m-%d %H:%M} UTC · {story.url}")
    if story.language:
        console.print(f"language: {story.language}")
    if verdict.sectors:
        ranked = ", ".join(
            f"{slug} {score:g}{'' if sure >= 1 else ' (weak: may not lead a section)'}"
            for slug, score, sure in zip(
                verdict.sectors, verdict.scores, verdict.confidence, strict=True
            )
        )
        console.print(f"sectors: {ranked}")
    else:
        console.print("sectors: none (the story stays out of the digest)")
    settings = state.config.file.classify
    console.print(
        f"off-topic score: {verdict.off_topic:g} (a sector needs {settings.min_score:g} and "
        f"half as much again as the off-topic score)"
    )
    if verdict.excluded:
        console.print(f"ruled out by an exclusion: {', '.join(verdict.excluded)}")
    table = make_table(
        "rule",
        "phrase",
        Column("where", no_wrap=True),
        Column("adds", no_wrap=True, justify="right"),
        title="Matched rules",
    )
    for match in verdict.matches:
        note = " (ambiguous: counts only beside another keyword)" if match.ambiguous else ""
        if match.rule.startswith("corporate:"):  # counted apart, not added again
            note = " (corporate news: an industry sector that fits as well goes first)"
        table.add_row(
            escape(match.rule), escape(match.phrase + note), match.field, f"{match.weight:g}"
        )
    console.print(table)
    others = {k: v for k, v in verdict.all_scores.items() if k not in verdict.sectors}
    if others:
        below = ", ".join(f"{k} {v:g}" for k, v in sorted(others.items(), key=lambda kv: -kv[1]))
        console.print(f"below the threshold: {below}")
    if stored is not None:
        opinion = SectorModel.from_bytes(stored.model).opinions([(story.title, story.summary)])[0]
        used = "on" if state.config.file.classify.model.enabled else "off (classify.model)"
        console.print(
            f"sector model ({used}, learnt from {stored.examples} stories): "
            f"{opinion.label} at {opinion.probability:.2f}"
        )
