"""Calling an assistant's model: transient failures retried with backoff, visibly.

A model call that fails with a transient error (429, 5xx, a timeout, a dropped
connection) is retried with exponential backoff and jitter (tenacity). Each retry is
announced on the LangGraph ``custom`` stream, so the event stream shows it as a ``retry``
event. A failure that persists, or one that is not transient (a bad request, a wrong API
key), raises :class:`~assistant_graph._errors.ModelCallError` naming the assistant path,
the cause and the number of attempts. Interrupts pass through untouched.

A run with a deadline (a ``max_seconds`` budget) bounds each call by the time left, through
the client's per-request timeout where the client has one (OpenAI-compatible models), and
never waits to retry past the deadline: a call that cannot be made or finished in time raises
:class:`~assistant_graph._budget.OutOfTime`, which ends the run incomplete (not failed).
Each answer's cost is written into it where it arrives (:mod:`._pricing`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langgraph.errors import GraphBubbleUp
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from assistant_graph._budget import OutOfTime
from assistant_graph._errors import ModelCallError
from assistant_graph._event_source import Origin, emit, report_usage
from assistant_graph._pricing import Pricer, mark_cost
from assistant_graph.events import ErrorEvent, RetryEvent

__all__ = ["ModelCaller", "RetryPolicy", "is_transient"]

TRANSIENT_STATUS_CODES = frozenset({408, 409, 429, 500, 502, 503, 504})
"""HTTP statuses worth retrying: timeouts, conflicts, rate limits, server errors."""

_TRANSIENT_NAMES = (
    "RateLimit",
    "Timeout",
    "ConnectionError",
    "ConnectError",
    "ReadError",
    "RemoteProtocolError",
)
"""Fragments of exception class names (anywhere in the class hierarchy) that mark transient
failures of clients that carry no HTTP status: openai's, httpx's, langchain-core's."""


@dataclass(frozen=True)
class RetryPolicy:
    """How transient model failures are retried."""

    max_attempts: int = 4
    """Attempts in all (1 means no retry)."""
    initial_delay: float = 0.5
    """Seconds before the first retry; doubles with every retry."""
    max_delay: float = 8.0
    """Longest wait between two attempts, in seconds."""
    jitter: float = 0.5
    """Up to this many random seconds added to each wait."""


def is_transient(error: BaseException) -> bool:
    """Whether a model call failing with ``error`` is worth trying again."""
    status = getattr(error, "status_code", None)
    if isinstance(status, int):
        return status in TRANSIENT_STATUS_CODES
    names = [cls.__name__ for cls in type(error).__mro__]
    return any(fragment in name for name in names for fragment in _TRANSIENT_NAMES)


_DEADLINE_SLACK = 0.05
"""Seconds before the deadline at which a failed call counts as cut by it (a client's
timeout fires at about the deadline, not after it)."""


def _until(deadline: float | None, wait: Any) -> Any:
    """A tenacity wait that never sleeps past ``deadline``: the attempt after it finds the
    time spent and ends the run incomplete instead of failing late."""
    if deadline is None:
        return wait

    def capped(retry_state: RetryCallState) -> float:
        return max(0.0, min(float(wait(retry_state)), deadline - time.time()))

    return capped


@dataclass(frozen=True)
class ModelCaller:
    """Makes the model calls of one assistant under a retry policy."""

    origin: Origin
    """The assistant making the calls, for its events and errors."""
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    """The retry policy."""
    pricer: Pricer | None = None
    """Prices each answer (None: costs are not recorded)."""
    deadline: float | None = None
    """``time.time()`` by which the calls must end (None: no deadline)."""
    request_timeout: bool = False
    """Whether the model takes a per-request ``timeout`` to bound a call by the deadline."""

    def invoke(
        self,
        model: Runnable[LanguageModelInput, BaseMessage],
        prompt: list[BaseMessage],
        config: RunnableConfig | None = None,
    ) -> BaseMessage:
        """Call ``model`` on ``prompt``, retrying transient failures (sync)."""
        retrying = Retrying(**self._retry_options())
        try:
            for attempt in retrying:
                with attempt:
                    return self._answered(model.invoke(prompt, config, **self._call_options()))
        except (GraphBubbleUp, OutOfTime):
            raise
        except Exception as error:
            raise self._failure(error, retrying.statistics) from error
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def ainvoke(
        self,
        model: Runnable[LanguageModelInput, BaseMessage],
        prompt: list[BaseMessage],
        config: RunnableConfig | None = None,
    ) -> BaseMessage:
        """Call ``model`` on ``prompt``, retrying transient failures (async)."""
        retrying = AsyncRetrying(**self._retry_options())
        try:
            async for attempt in retrying:
                with attempt:
                    options = self._call_options()
                    return self._answered(await model.ainvoke(prompt, config, **options))
        except (GraphBubbleUp, OutOfTime):
            raise
        except Exception as error:
            raise self._failure(error, retrying.statistics) from error
        raise AssertionError("unreachable: tenacity either returns or raises")

    def _call_options(self) -> dict[str, Any]:
        """Keyword arguments of one attempt: the client's timeout, up to the deadline.

        Raises:
            OutOfTime: If the deadline has passed.
        """
        if self.deadline is None:
            return {}
        left = self.deadline - time.time()
        if left <= 0:
            raise OutOfTime(f"{' > '.join(self.origin.path)} ran out of time")
        return {"timeout": left} if self.request_timeout else {}

    def _retry_options(self) -> dict[str, Any]:
        policy = self.policy
        return {
            "stop": stop_after_attempt(policy.max_attempts),
            "wait": _until(
                self.deadline,
                wait_exponential(multiplier=policy.initial_delay, max=policy.max_delay)
                + wait_random(0, policy.jitter),
            ),
            "retry": retry_if_exception(
                lambda error: is_transient(error) and not isinstance(error, GraphBubbleUp)
            ),
            "before_sleep": self._announce,
            "reraise": True,
        }

    def _answered(self, response: BaseMessage) -> BaseMessage:
        cost = mark_cost(response, self.pricer)
        report_usage(self.origin, getattr(response, "usage_metadata", None), cost)
        return response

    def _announce(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        emit(
            RetryEvent(
                **self.origin.fields(),
                attempt=state.attempt_number,
                max_attempts=self.policy.max_attempts,
                wait_seconds=round(state.upcoming_sleep, 3),
                error=f"{type(error).__name__}: {error}" if error else "",
            )
        )

    def _failure(self, error: Exception, statistics: dict[str, Any]) -> Exception:
        """What a call that failed for good raises: ModelCallError (announced as an error
        event), or OutOfTime when the deadline cut it."""
        if self.deadline is not None and time.time() >= self.deadline - _DEADLINE_SLACK:
            return OutOfTime(f"{' > '.join(self.origin.path)} ran out of time: {error}")
        attempts = int(statistics.get("attempt_number", 1))
        failure = ModelCallError(
            self.origin.path,
            error,
            attempts=attempts,
            parent_tool_call_id=self.origin.parent_tool_call_id,
        )
        emit(ErrorEvent(**self.origin.fields(), message=str(failure), error_type="ModelCallError"))
        return failure
