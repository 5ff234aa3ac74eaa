"""The sector model: a second opinion for what the rules leave without a sector or score weakly.

A linear model (scikit-learn's logistic regression by stochastic gradient descent) over hashed
word unigrams and bigrams of the headline (counted twice) and teaser. It learns the publisher's
own feeds and vocabulary from stored stories that the rules classified decisively (the class
``none`` from stories the off-topic rules ruled out decisively) and from the editor's
corrections, which count three times. Stateless hashing means the model is only its weights,
stored as a NumPy archive in the database: no pickle is ever loaded.

``evaluate_on_history`` measures it honestly: trained on the older part of the history, scored
on the newer part, which it never saw.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

NONE = "none"
_FEATURES = 2**18


@dataclass(frozen=True, slots=True)
class Example:
    title: str
    summary: str
    label: str  # a sector slug or "none"
    weight: float = 1.0
    when: float = 0.0  # a timestamp, to split the history by time


@dataclass(frozen=True, slots=True)
class Opinion:
    label: str  # the model's best guess: a sector slug or "none"
    probability: float


@dataclass(frozen=True, slots=True)
class HistoryScore:
    trained_on: int
    scored_on: int
    accuracy: float  # on the newer part, against labels it never saw
    per_label: tuple[tuple[str, int, float], ...]  # (label, examples, recall)


def _vectorizer() -> Any:
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(
        n_features=_FEATURES, ngram_range=(1, 2), alternate_sign=False, norm="l2"
    )


def _text(title: str, summary: str) -> str:
    return f"{title} {title} {summary}"


class SectorModel:
    """Weights per label over hashed n-grams; ``opinions`` for many stories at once."""

    def __init__(self, labels: Sequence[str], coef: Any, intercept: Any) -> None:
        self.labels = tuple(labels)
        self._coef = coef
        self._intercept = intercept
        self._vectors = _vectorizer()

    def opinions(self, stories: Sequence[tuple[str, str]]) -> list[Opinion]:
        """The best label and its probability for each (title, summary)."""
        if not stories:
            return []
        import numpy as np

        features = self._vectors.transform([_text(t, s) for t, s in stories])
        scores = features @ self._coef.T + self._intercept
        if len(self.labels) == 2:  # a binary model gives one column: the second label's odds
            scores = np.column_stack([-scores.ravel(), scores.ravel()])
        scores = np.asarray(scores)
        scores -= scores.max(axis=1, keepdims=True)
        odds = np.exp(scores)
        probabilities = odds / odds.sum(axis=1, keepdims=True)
        best = probabilities.argmax(axis=1)
        return [
            Opinion(self.labels[int(i)], float(probabilities[row, int(i)]))
            for row, i in enumerate(best)
        ]

    def to_bytes(self) -> bytes:
        import numpy as np

        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            labels=np.array(self.labels),
            coef=self._coef.astype(np.float32),
            intercept=self._intercept.astype(np.float32),
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> SectorModel:
        import numpy as np

        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            return cls([str(x) for x in archive["labels"]], archive["coef"], archive["intercept"])


def train(examples: Sequence[Example]) -> SectorModel:
    """Fit the model; needs examples of at least two labels."""
    from sklearn.linear_model import SGDClassifier

    labels = sorted({e.label for e in examples})
    if len(labels) < 2:
        raise ValueError("the model needs examples of at least two labels")
    features = _vectorizer().transform([_text(e.title, e.summary) for e in examples])
    fitted = SGDClassifier(
        loss="log_loss", alpha=1e-5, max_iter=30, tol=None, random_state=0, class_weight=None
    ).fit(features, [e.label for e in examples], sample_weight=[e.weight for e in examples])
    return SectorModel([str(c) for c in fitted.classes_], fitted.coef_, fitted.intercept_)


def evaluate_on_history(examples: Sequence[Example], share: float = 0.2) -> HistoryScore:
    """Train on the older examples, score on the newest ``share`` of them, which it never saw."""
    ordered = sorted(examples, key=lambda e: e.when)
    cut = len(ordered) - max(1, math.ceil(len(ordered) * share))
    older, newer = ordered[:cut], ordered[cut:]
    model = train(older)
    guesses = model.opinions([(e.title, e.summary) for e in newer])
    right = sum(g.label == e.label for g, e in zip(guesses, newer, strict=True))
    per_label = []
    for label in sorted({e.label for e in newer}):
        mine = [(g, e) for g, e in zip(guesses, newer, strict=True) if e.label == label]
        hits = sum(g.label == label for g, _ in mine)
        per_label.append((label, len(mine), hits / len(mine)))
    return HistoryScore(len(older), len(newer), right / len(newer), tuple(per_label))
