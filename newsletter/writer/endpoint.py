"""An OpenAI-compatible chat endpoint (a hosted API, Ollama, vLLM, ...) through the official
``openai`` client, the one module that imports it, and only when the writer is on.

``Endpoint.ask`` sends one request and never waits longer than the ``timeout`` it is given,
whatever the server does (a silent server, one that trickles bytes, a name that does not
resolve): the request runs in a daemon thread and is left behind when the time is up. The
client's own retries are off, so a 429 or a 500 costs one request, not a minute of backing
off. Every failure comes out as ``Failure``, its reason free of the API key.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any


class Failure(Exception):
    """One request that gave no usable answer; ``stop``: asking again now is no use."""

    def __init__(self, reason: str, *, stop: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.stop = stop


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    tokens: int  # as the server reports them (estimated from the text when it does not)


class Endpoint:
    """One model behind one OpenAI-compatible base URL."""

    def __init__(self, base_url: str, model: str, *, api_key: str) -> None:
        import openai  # a large import, made only when the writer is on

        self._openai: Any = openai
        self._model = model
        self._key = api_key
        # a local server needs no key, but the client wants one: any text will do there
        self._client: Any = openai.OpenAI(
            base_url=base_url, api_key=api_key or "no-key", max_retries=0, timeout=30.0
        )
        # the client loads its parts on first use: load them now, before any timed request
        _ = self._client.chat.completions.create

    def ask(self, system: str, user: str, *, timeout: float) -> Answer:
        """The model's answer to one request, within ``timeout`` seconds; ``Failure`` else."""
        outcome: list[Any] = []
        done = threading.Event()

        def call() -> None:
            try:
                outcome.append(self._create(system, user, timeout))
            except BaseException as exc:  # handed to the caller; a thread must not raise
                outcome.append(exc)
            finally:
                done.set()

        threading.Thread(target=call, name="writer-request", daemon=True).start()
        if not done.wait(timeout):
            raise Failure(_late(timeout), stop=True)
        result = outcome[0]
        if isinstance(result, BaseException):
            raise self._failure(result, timeout) from None
        return self._answer(result, system, user)

    def close(self) -> None:
        self._client.close()

    def _create(self, system: str, user: str, timeout: float) -> Any:
        return self._client.chat.completions.create(
            model=self._model,
            messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
            timeout=timeout,
        )

    def _answer(self, response: Any, system: str, user: str) -> Answer:
        try:
            text = response.choices[0].message.content
        except (AttributeError, IndexError, TypeError):
            raise Failure("a malformed answer (no choices)", stop=False) from None
        if not isinstance(text, str):
            raise Failure("a malformed answer (no text)", stop=False)
        usage = getattr(response, "usage", None)
        tokens = getattr(usage, "total_tokens", None)
        if not isinstance(tokens, int) or tokens < 0:
            tokens = (len(system) + len(user) + len(text)) // 4  # about 4 characters a token
        return Answer(text, tokens)

    def _failure(self, exc: BaseException, timeout: float) -> Failure:
        """``exc`` as a ``Failure`` whose reason names what happened, never the key."""
        openai = self._openai
        if isinstance(exc, openai.APITimeoutError):
            failure = Failure(_late(timeout), stop=True)
        elif isinstance(exc, openai.APIConnectionError):
            failure = Failure(f"cannot reach the endpoint: {_cause(exc)}", stop=True)
        elif isinstance(exc, openai.RateLimitError):
            after = exc.response.headers.get("retry-after", "")
            failure = Failure(
                f"rate limited (429{f', retry after {after} s' if after else ''})", stop=True
            )
        elif isinstance(exc, openai.APIStatusError):
            code = exc.status_code
            # a 4xx (a wrong model, a refused key) fails every request alike: stop; a 5xx may
            # be one request's bad luck
            failure = Failure(f"HTTP {code}: {_first_line(exc)}", stop=code < 500)
        elif isinstance(exc, (openai.APIResponseValidationError, ValueError)):
            failure = Failure(f"a malformed answer: {_first_line(exc)}", stop=False)
        else:
            failure = Failure(f"{type(exc).__name__}: {_first_line(exc)}", stop=True)
        return Failure(self.redacted(failure.reason), stop=failure.stop)

    def redacted(self, text: str) -> str:
        """``text`` with the API key, should it appear, blanked."""
        return text.replace(self._key, "[key]") if self._key else text


def _late(timeout: float) -> str:
    return f"no answer within {timeout:.1f} s"


def _cause(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    return _first_line(cause) if cause is not None else _first_line(exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]
