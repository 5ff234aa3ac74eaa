"""The optional writer's flow: the brief's summaries and a two-line intro written by a language
model, between building the day's edition and freezing it (``flows.build``).

``write_brief`` takes the storylines that can open a reader's brief (``edition.brief.
candidates``, biggest first, at most ``writer.max_storylines``), finds what was written for them
before in the store, and asks the model (``writer.endpoint``) for the rest, within
``writer.budget_seconds`` and ``writer.max_tokens`` for the edition. Each answer is checked
(``writer.grounding``): every number and name must be in the outlets' own text. What passes is
kept and goes into ``Edition.written`` and ``Edition.intro``; the brief falls back to its
extractive summary for everything else.

It never raises and never waits past its budget: an endpoint that is down, slow, failing,
rate-limiting or answering nonsense costs at most the budget and one log line for the edition.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from newsletter.config import Config
from newsletter.config.settings import WriterConfig
from newsletter.edition import brief, digest
from newsletter.models import Edition
from newsletter.writer.endpoint import Endpoint, Failure
from newsletter.writer.grounding import cleaned, problem
from newsletter.writer.prompt import Piece, Request, intro_request, summary_request

logger = logging.getLogger(__name__)

INTRO_STORYLINES = 3  # the intro is about the edition's biggest storylines
REFUSED = ""  # kept for a request whose answer the check rejected
_FAILURES_BEFORE_STOP = 2  # failed requests (500s, malformed answers) before writing stops


class WrittenCache(Protocol):
    """What the writer needs of the store (``store.written``)."""

    def find(self, keys: Iterable[str]) -> dict[str, str]: ...

    def keep(self, key: str, text: str, *, model: str, now: datetime) -> None: ...

    def forget_before(self, when: datetime) -> int: ...


@dataclass(slots=True)
class _Run:
    """What one edition's writing did, for its one log line."""

    asked: int = 0
    cached: int = 0
    tokens: int = 0
    accepted: dict[str, str] = field(default_factory=dict)  # request key → text
    rejected: Counter[str] = field(default_factory=Counter)  # reason's kind → count
    refused_before: int = 0  # rejected by an earlier build: not asked again
    failures: list[str] = field(default_factory=list)
    stopped: str = ""


def write_brief(
    config: Config,
    cache: WrittenCache,
    edition: Edition,
    *,
    now: datetime,
    clock: Callable[[], float] = time.monotonic,
    ask: bool = True,
) -> Edition:
    """``edition`` with the summaries and the intro the model wrote and the check accepted;
    ``edition`` itself when the writer is off, has nothing to write or fails. ``ask=False``
    (the send) takes only what was written before: the endpoint is never waited on."""
    settings = config.file.writer
    if not settings.base_url or edition.brief_size <= 0:
        return edition
    key = os.environ.get(settings.api_key_env, "") if settings.api_key_env else ""
    try:
        return _write(
            settings,
            cache,
            edition,
            key=key,
            now=now,
            clock=clock,
            keep_days=config.file.collect.keep_days,
            ask=ask,
        )
    except Exception as exc:  # the edition goes out whatever happens here
        message = f"{type(exc).__name__}: {exc}"
        logger.warning(
            "the writer failed, so the brief keeps its extractive summaries: %s",
            message.replace(key, "[key]") if key else message,
        )
        return edition


def _write(
    settings: WriterConfig,
    cache: WrittenCache,
    edition: Edition,
    *,
    key: str,
    now: datetime,
    clock: Callable[[], float],
    keep_days: int,
    ask: bool,
) -> Edition:
    requests = _requests(settings, edition)
    if not requests:
        return edition
    cache.forget_before(now - timedelta(days=keep_days))
    run = _Run()
    known = cache.find(r.key for r in requests)
    for request, text in _from_cache(known, requests).items():
        run.accepted[request.key] = text
        run.cached += 1
    # a request whose answer was rejected is not asked again (every collect writes ahead):
    # its key changes with its sources, the model or the prompt
    refused = {r.key for r in requests if known.get(r.key) == REFUSED}
    run.refused_before = len(refused)
    pending = [r for r in requests if r.key not in run.accepted and r.key not in refused]
    pending = pending if ask else []
    started = clock()
    if pending:
        # the client is loaded first: the budget is the endpoint's, not the import's
        endpoint = Endpoint(settings.base_url, settings.model, api_key=key)
        started = clock()
        try:
            _ask_all(
                settings,
                endpoint,
                cache,
                pending,
                run,
                now=now,
                clock=clock,
                deadline=started + settings.budget_seconds,
            )
        finally:
            endpoint.close()
    _log(run, requests, elapsed=clock() - started, key_env=settings.api_key_env)
    return _with_written(edition, requests, run.accepted)


def _requests(settings: WriterConfig, edition: Edition) -> list[Request]:
    """The summaries to write, biggest storylines first, with the intro after the first
    ``INTRO_STORYLINES`` (it matters as much as they do).

    The intro is about the first storylines of the brief a reader of every sector gets: the
    email shows it to each reader whose brief has them all (``edition.render``)."""
    stories = brief.candidates(edition)[: settings.max_storylines]
    if not stories:
        return []
    voice = settings.voice_for(edition.publication)
    summaries = [summary_request(s, voice=voice, model=settings.model) for s in stories]
    items, _ = brief.pick(edition, digest.layout(edition))
    intro = intro_request(
        [item.story for item in items[:INTRO_STORYLINES]] or stories[:INTRO_STORYLINES],
        voice=voice,
        model=settings.model,
        publication=edition.publication,
    )
    return [*summaries[:INTRO_STORYLINES], intro, *summaries[INTRO_STORYLINES:]]


def _from_cache(found: dict[str, str], requests: list[Request]) -> dict[Request, str]:
    """What was written before for ``requests`` (``found``: the cache's), still passing
    today's check."""
    return {
        r: found[r.key]
        for r in requests
        if found.get(r.key, REFUSED) != REFUSED
        and not problem(found[r.key], r.sources, limit=r.limit, lines=r.lines)
    }


def _ask_all(
    settings: WriterConfig,
    endpoint: Endpoint,
    cache: WrittenCache,
    pending: list[Request],
    run: _Run,
    *,
    now: datetime,
    clock: Callable[[], float],
    deadline: float,
) -> None:
    """Ask for each of ``pending`` in turn until done or a budget is spent; keep what passes."""
    for request in pending:
        left = deadline - clock()
        if left <= 0:
            run.stopped = f"the time budget ({settings.budget_seconds:g} s) was spent"
            return
        if run.tokens >= settings.max_tokens:
            run.stopped = f"the token budget ({settings.max_tokens}) was spent"
            return
        run.asked += 1
        try:
            answer = endpoint.ask(
                request.system, request.user, timeout=min(settings.timeout_seconds, left)
            )
        except Failure as failure:
            run.failures.append(failure.reason)
            if failure.stop or len(run.failures) >= _FAILURES_BEFORE_STOP:
                run.stopped = failure.reason
                return
            continue
        run.tokens += answer.tokens
        text = cleaned(answer.text)
        reason = problem(text, request.sources, limit=request.limit, lines=request.lines)
        if reason:
            # the kind of reason, without its figures: "too long (3875 characters; ...)" is
            # "too long", so that thirteen of them are one count
            run.rejected[reason.split(":")[0].split(" (")[0]] += 1
            logger.info(
                "the writer's %s of %s was rejected (%s): %s",
                request.piece.value,
                ", ".join(request.story_ids),
                endpoint.redacted(reason),
                endpoint.redacted(text[:400]),
            )
            cache.keep(request.key, REFUSED, model=settings.model, now=now)
            continue
        text = " ".join(text.splitlines())
        cache.keep(request.key, text, model=settings.model, now=now)
        run.accepted[request.key] = text


def _log(run: _Run, requests: list[Request], *, elapsed: float, key_env: str) -> None:
    """One line for the edition: what was written, what fell back and why."""
    summaries = [r for r in requests if r.piece is Piece.SUMMARY]
    written = sum(1 for r in summaries if r.key in run.accepted)
    intro = any(r.key in run.accepted for r in requests if r.piece is Piece.INTRO)
    parts = [
        f"the writer wrote {written} of {len(summaries)} brief summaries and "
        f"{'the' if intro else 'no'} intro ({run.cached} from the cache, "
        f"{_plural(run.asked, 'request')}, {run.tokens} tokens, {elapsed:.1f} s)"
    ]
    if run.rejected:
        listed = ", ".join(f"{reason}: {n}" for reason, n in sorted(run.rejected.items()))
        parts.append(f"{sum(run.rejected.values())} rejected ({listed})")
    failed = _plural(len(run.failures), "failed request")
    if run.failures and run.stopped == run.failures[-1]:
        parts.append(f"stopped after {failed}: {run.stopped}")
    elif run.failures:
        parts.append(f"{failed}, the last: {run.failures[-1]}")
    if run.stopped and run.stopped != (run.failures or [""])[-1]:
        parts.append(f"stopped: {run.stopped}")
    if any(f.startswith(("HTTP 401", "HTTP 403")) for f in run.failures):
        parts.append(f"check the API key in the environment variable {key_env or '(none)'}")
    if run.refused_before:
        parts.append(f"{run.refused_before} rejected before, not asked again")
    if written < len(summaries):
        parts.append(f"{len(summaries) - written} keep their extractive summaries")
    level = logging.WARNING if run.failures or run.stopped or run.rejected else logging.INFO
    logger.log(level, "; ".join(parts))


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _with_written(edition: Edition, requests: list[Request], accepted: dict[str, str]) -> Edition:
    written = tuple(
        (r.story_ids[0], accepted[r.key])
        for r in requests
        if r.piece is Piece.SUMMARY and r.key in accepted
    )
    intro = next((r for r in requests if r.piece is Piece.INTRO and r.key in accepted), None)
    return dataclasses.replace(
        edition,
        written=written,
        intro=accepted[intro.key] if intro else "",
        intro_covers=intro.story_ids if intro else (),
    )
