"""``newsletter rules check FILE`` and ``rules train``: how the rules score on a labelled file
the editor keeps, and the model trained from it."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape
from rich.table import Column

from newsletter import flows
from newsletter.cli.common import (
    State,
    current_time,
    make_table,
    pass_state,
)
from newsletter.errors import ConfigError
from newsletter.sectors import evaluate, judge
from newsletter.sectors.model import SectorModel


@click.group()
def rules() -> None:
    """Check the sector rules on a labelled file, or train the sector model.

    Example: newsletter rules check labelled.jsonl
    """


@rules.command("check")
@click.argument("labelled", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--errors", "show_errors", is_flag=True, help="List every story the rules miss.")
@click.option(
    "--model", "with_model", is_flag=True, help="Add the stored sector model's second opinion."
)
@pass_state
def check(state: State, labelled: Path, show_errors: bool, with_model: bool) -> None:
    """Score the sector rules on a labelled JSON Lines file: per-sector precision, recall and
    F1, macro-F1, top-1 accuracy, off-topic stories left out, and the commonest confusions.

    Each line: {"title": ..., "summary": ..., "link": ..., "primary": SLUG or "none",
    "secondary": [SLUG, ...]}.

    Example: newsletter rules check labelled.jsonl --errors
    """
    config = state.config
    slugs = config.sector_slugs
    items = evaluate.read_labelled(labelled, slugs)
    classifier = judge.make_classifier(config)
    verdicts = [classifier.judge(i.title, i.summary, None, i.url) for i in items]
    given = {id(item): v.sectors for item, v in zip(items, verdicts, strict=True)}
    if with_model:
        model = _stored_model(state)
        asked = [(i, v) for i, v in zip(items, verdicts, strict=True) if judge.wants_opinion(v)]
        opinions = model.opinions([(i.title, i.summary) for i, _ in asked])
        for (item, verdict), opinion in zip(asked, opinions, strict=True):
            fits = judge.second_opinion(config, verdict, opinion)
            given[id(item)] = tuple(f.sector for f in fits)
    report = evaluate.score(items, slugs, lambda item: given[id(item)])
    console = state.console
    console.print(
        f"{labelled}: {report.items} stories, {report.sector_items} in sectors, "
        f"{report.none_items} off-topic"
    )
    table = make_table(
        Column("sector", no_wrap=True),
        *(Column(c, justify="right") for c in ("precision", "recall", "F1", "stories")),
        title="Per sector",
    )
    for s in report.sectors:
        shown = [s.precision, s.recall, s.f1] if s.scored else None
        figures = [f"{x:.2f}" for x in shown] if shown else ["n/a"] * 3  # neither in it nor given
        table.add_row(s.slug, *figures, str(s.support))
    console.print(table)
    scored = sum(1 for s in report.sectors if s.scored)
    named = f" (over the {scored} sectors the file or the rules name)"
    console.print(f"macro-F1: {report.macro_f1:.3f}{named if scored < len(report.sectors) else ''}")
    console.print(f"top-1: {report.top1:.3f} (primary or secondary: {report.lenient:.3f})")
    console.print(f"off-topic stories left out: {report.none_left_out:.3f}")
    console.print(f"sector stories wrongly left out: {report.wrongly_left_out:.3f}")
    if report.confusions:
        console.print("commonest confusions (labelled → given):")
        for labelled_as, given_as, count in report.confusions[:10]:
            console.print(f"  {labelled_as} → {given_as}: {count}")
    if show_errors and report.misses:
        console.print("misses (labelled → given \\[all]: headline):")
        for miss in sorted(report.misses, key=lambda m: (m.item.primary, m.item.title)):
            first = miss.predicted[0] if miss.predicted else "none"
            console.print(
                f"  {miss.item.primary} → {first} {escape(str(list(miss.predicted)))}: "
                f"{escape(miss.item.title[:100])}"
            )


def _stored_model(state: State) -> SectorModel:
    store = state.store()
    try:
        stored = store.stories.latest_model()
    finally:
        store.close()
    if stored is None:
        raise ConfigError(
            "no sector model is stored yet",
            hint="Train one from the collected stories: newsletter rules train",
        )
    return SectorModel.from_bytes(stored.model)


@rules.command("train")
@pass_state
def train(state: State) -> None:
    """Learn the sector model from the stored stories the rules classified decisively and
    from the editor's moves, score it on the newest fifth of them (which it never saw), and
    keep it. It is used only with classify.model.enabled and min_examples reached.

    Example: newsletter rules train
    """
    config = state.config
    store = state.store()
    try:
        examples, score = flows.train_model(config, store, now=current_time())
    finally:
        store.close()
    console = state.console
    console.print(f"learnt from {examples} stories")
    console.print(
        f"history check: trained on the older {score.trained_on}, right on "
        f"{score.accuracy:.1%} of the newest {score.scored_on}"
    )
    for label, count, recall in score.per_label:
        console.print(f"  {label}: {count} stories, recall {recall:.2f}")
    settings = config.file.classify.model
    if not settings.enabled:
        console.print("the model is off: set classify.model.enabled: true to use it")
    elif examples < settings.min_examples:
        console.print(
            f"the model is not used until it has learnt from {settings.min_examples} stories"
        )
