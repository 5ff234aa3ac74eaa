"""The compositions the commands, the scheduler and the web call, each going down the layers:
``collect`` (feeds → stored, prepared stories), ``prepare`` (languages, sectors, clusters kept),
``build`` (the day's edition), ``preview``, ``send`` (freeze, then ``delivery``), ``explain`` and
``train`` (the sector rules and model), ``scaffold`` (``newsletter init``)."""

from __future__ import annotations

from newsletter.flows.build import Built, build, edition_date_for
from newsletter.flows.collect import CollectReport, collect_all, fetch_teasers
from newsletter.flows.explain import explain_story
from newsletter.flows.preview import PreviewResult, preview
from newsletter.flows.send import frozen_edition, send_edition
from newsletter.flows.train import active_model, train_model

__all__ = [
    "Built",
    "CollectReport",
    "PreviewResult",
    "active_model",
    "build",
    "collect_all",
    "edition_date_for",
    "explain_story",
    "fetch_teasers",
    "frozen_edition",
    "preview",
    "send_edition",
    "train_model",
]
