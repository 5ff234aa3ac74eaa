"""The language a story is written in, judged from its text with the feed's declared language as
a hint. Pure, apart from loading py3langid's model (shipped in its wheel) once per process.

A confident reading of the text wins; a short or mixed text, on which detectors are unsure, takes
the feed's declared language; with neither, the story's language is unknown (``""``) and it is
kept, so a terse English headline is never lost to a guess.
"""

from __future__ import annotations

from functools import cache
from typing import Any

SURE = 0.9  # the detector's probability at or above which the text decides alone
LIKELY = 0.5  # ... at or above which it decides when the feed declares nothing


@cache
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def primary_subtag(tag: str | None) -> str:
    """``en-GB`` → ``en``; ``""`` for nothing usable."""
    if not tag:
        return ""
    head = tag.strip().replace("_", "-").split("-")[0].lower()
    return head if head.isalpha() and 2 <= len(head) <= 3 else ""


def detect(title: str, summary: str = "", declared: str = "") -> str:
    """The story's language as an ISO 639-1 code, or ``""`` when it cannot be told."""
    text = f"{title}. {summary}".strip()
    hint = primary_subtag(declared)
    if len(text) < 12:
        return hint
    language, probability = _identifier().classify(text)
    if probability >= SURE:
        return str(language)
    if hint:
        return hint
    return str(language) if probability >= LIKELY else ""


def allowed(language: str, accepted: frozenset[str]) -> bool:
    """Whether a story in ``language`` may appear; an unknown language is given the benefit."""
    return not language or language in accepted
