"""Config → sectors: the rules' classifier, and the sector model's second opinion. Pure.

``make_classifier`` compiles the configured rules; ``second_opinion`` merges the model's view
into the rules' verdict. (Training the model from the store is a flow: ``flows.train``.)
"""

from __future__ import annotations

from newsletter.config import Config
from newsletter.models import SectorFit
from newsletter.sectors.model import NONE, Opinion
from newsletter.sectors.rules import Classifier, SectorRule, Verdict


def make_classifier(config: Config) -> Classifier:
    rules = [
        SectorRule(
            s.slug,
            dict(s.keywords),
            tuple(s.exclude),
            s.fallback,
            tuple(s.ambiguous),
            s.priority,
            tuple(s.corporate),
        )
        for s in config.file.sectors
    ]
    settings = config.file.classify
    return Classifier(
        rules,
        off_topic=settings.off_topic,
        off_topic_paths=settings.off_topic_paths,
        lead_score=settings.lead,
        title_weight=settings.title_weight,
        min_score=settings.min_score,
        hint_bonus=settings.hint_bonus,
        secondary_ratio=settings.secondary_ratio,
    )


def wants_opinion(verdict: Verdict) -> bool:
    """Whether the model is asked at all: the rules found no sector, or a weak first one."""
    return not verdict.sectors or verdict.confidence[0] < 1.0


def second_opinion(config: Config, verdict: Verdict, opinion: Opinion) -> tuple[SectorFit, ...]:
    """The rules' sectors, with the model's opinion where the rules are silent or weak.

    A story the rules leave without a sector (and that is not off-topic) takes the model's
    sector when it is sure enough; a weak first sector the model agrees with may lead.
    """
    settings = config.file.classify
    sure = settings.model
    fits = verdict.fits
    if opinion.label == NONE or opinion.probability < sure.min_probability:
        return fits
    leads = 1.0 if opinion.probability >= sure.lead_probability else 0.5
    if not fits:
        if verdict.off_topic >= settings.min_score:
            return fits
        return (SectorFit(opinion.label, leads),)
    first, *rest = fits
    if first.sector == opinion.label and first.confidence < 1.0:
        return (SectorFit(first.sector, max(first.confidence, leads)), *rest)
    return fits
