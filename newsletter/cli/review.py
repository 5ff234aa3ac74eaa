"""``newsletter review``: each storyline the edition shows, and why it is there."""

from __future__ import annotations

import json
from datetime import date, datetime

import click
from rich.markup import escape

from newsletter.cli.common import State, current_time, pass_state, print_unmatched
from newsletter.flows.review import Review, review


@click.command("review")
@click.argument("day", required=False, type=click.DateTime(["%Y-%m-%d"]), metavar="[DAY]")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@pass_state
def review_command(state: State, day: datetime | None, as_json: bool) -> None:
    """Show each storyline of DAY's edition (default: today's, as it would be built now) in
    its section and place, with its other reports, its score and the reasons for its rank.

    Example: newsletter review 2026-11-25
    """
    store = state.store()
    try:
        result = review(state.config, store, day=day.date() if day else None, now=current_time())
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(_as_json(result), indent=2, ensure_ascii=False))
        return
    _print(state, result)


def _print(state: State, result: Review) -> None:
    console = state.console
    what = "as stored" if result.stored else "as it would be built now"
    console.print(f"[bold]The edition of {result.edition_date}[/], {what}")
    if result.unmatched:
        console.print("The editor's overrides that change nothing:")
        print_unmatched(console, result.unmatched)
    section = ""
    for shown in result.shown:
        if shown.section != section:
            section = shown.section
            console.print(f"\n[bold]== {escape(section)} ==[/]")
        story = shown.story
        mark = "" if shown.place != "more" else " (more)"
        update = "Update: " if story.update else ""
        console.print(f"{shown.rank:>3}. {escape(update + story.title)}{mark}")
        console.print(
            f"     {escape(story.source)} · score {shown.score:.2f} · id {story.id}",
            highlight=False,
        )
        for reason in shown.reasons:
            console.print(f"     - {escape(reason)}", highlight=False)
        for report in story.reports:
            console.print(f"     + {escape(report.title)} ({escape(report.source)})")
    if result.more_left_out:
        limit = state.config.file.email.more_headlines
        console.print(
            f"\n{result.more_left_out} more headlines the email leaves out "
            f"(email.more_headlines: {limit}, shared between the sections)."
        )


def _as_json(result: Review) -> dict[str, object]:
    def when(value: datetime | date) -> str:
        return value.isoformat()

    return {
        "edition_date": when(result.edition_date),
        "stored": result.stored,
        "unmatched": list(result.unmatched),
        "more_left_out": result.more_left_out,
        "shown": [
            {
                "section": s.section,
                "place": s.place,
                "rank": s.rank,
                "id": s.story.id,
                "title": s.story.title,
                "source": s.story.source,
                "url": s.story.url,
                "published": when(s.story.published),
                "update": s.story.update,
                "outlets": s.outlets,
                "score": round(s.score, 4),
                "reasons": list(s.reasons),
                "reports": [
                    {"id": r.id, "title": r.title, "source": r.source, "url": r.url}
                    for r in s.story.reports
                ],
            }
            for s in result.shown
        ],
    }
