"""The compositions the commands, the scheduler and the web call, each going down the layers:
``collect`` (feeds → stored, prepared stories), ``prepare`` (languages, sectors, clusters kept),
``build`` (the day's edition), ``preview``, ``send`` (freeze, then ``delivery``), ``explain`` and
``train`` (the sector rules and model), ``scaffold`` (``newsletter init``).

The names below are loaded on first use: importing one flow (``newsletter.flows.buckets`` for
``status``) does not import the others and what they need (the sector model's numpy, the
renderer, the migrations), so that a command starts with only what it uses. ``build`` and
``preview``, named like their modules, are imported from them
(``from newsletter.flows.build import build``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from newsletter.flows.build import Built, edition_date_for
    from newsletter.flows.collect import (
        CollectReport,
        collect_all,
        fetch_teasers,
        teasers_waiting,
    )
    from newsletter.flows.explain import explain_story
    from newsletter.flows.preview import PreviewResult
    from newsletter.flows.send import frozen_edition, send_edition
    from newsletter.flows.train import active_model, train_model

# each name and the module of this package it comes from
_WHERE = {
    "Built": "build",
    "edition_date_for": "build",
    "CollectReport": "collect",
    "collect_all": "collect",
    "fetch_teasers": "collect",
    "teasers_waiting": "collect",
    "explain_story": "explain",
    "PreviewResult": "preview",
    "frozen_edition": "send",
    "send_edition": "send",
    "active_model": "train",
    "train_model": "train",
}

__all__ = [
    "Built",
    "CollectReport",
    "PreviewResult",
    "active_model",
    "collect_all",
    "edition_date_for",
    "explain_story",
    "fetch_teasers",
    "frozen_edition",
    "send_edition",
    "teasers_waiting",
    "train_model",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'newsletter.flows' has no attribute {name!r}")
    return getattr(importlib.import_module(f"newsletter.flows.{module}"), name)
