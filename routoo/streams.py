"""Routed streams: the chosen model's chunks as they come, its cost charged once at the end.

The decision is known before the first chunk. A stream is settled once: at its real cost
when it runs to its end or has received the provider's usage (tokens counted here when the
provider sends none); at its reservation when it is cut short without usage (closed early,
broken, cancelled, or dropped and garbage-collected unclosed), since the provider may
have billed more than was read.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from routoo.decision import RoutingDecision
from routoo.ledger import Attempt, CallPlan, Ledger, answered, measured_usage

if TYPE_CHECKING:
    from litellm import ModelResponse


class _StreamLedger:
    """What a routed stream has seen, settled once when it ends (or is closed, or dropped)."""

    def __init__(self, ledger: Ledger, plan: CallPlan, attempt: Attempt, chunks: Any, first: Any) -> None:
        self.ledger = ledger
        self.source = chunks
        self.logging_obj = getattr(chunks, "logging_obj", None)  # tells litellm the provider
        self.plan = plan
        self.attempt = attempt
        self.decision = answered(plan, attempt)
        self.model = attempt.model
        self.chunks: list[Any] = [] if first is None else [first]
        self.pending = self.chunks[:]
        self.response: ModelResponse | None = None
        self.cost_usd: float | None = None
        self.usage: dict[str, int] | None = None
        self.call_id: str | None = None
        self._lock = threading.Lock()

    def finish(self, ended: bool) -> None:
        """Build the whole response from the chunks and charge it, once; ``ended``: it ran to its end."""
        with self._lock:
            if self.response is not None:
                return
            reported = self._provider_sent_usage()
            response = self._assemble(reported)
            self.response = response
            if ended or reported:
                self.cost_usd, self.usage, basis = self.ledger.settle(
                    self.plan, self.attempt, response, usage_reported=reported
                )
            else:
                self.usage, _ = measured_usage(self.plan, self.model, response, usage_reported=False)
                self.cost_usd, basis = (
                    self.ledger.charge_reservation(self.attempt, "its stream ended early"),
                    "reserved",
                )
            self.call_id = self.ledger.record(
                self.plan, response, self.decision, self.model, self.cost_usd, self.usage, basis
            )

    def drop(self) -> None:
        """The stream was garbage-collected unclosed: charge its reservation (a no-op once settled)."""
        self.ledger.charge_reservation(self.attempt, "its stream was dropped before it ended")

    def _provider_sent_usage(self) -> bool:
        # litellm adds a usage chunk of its own counting when asked for usage the provider did
        # not send; its stream wrapper's own record of the chunks says what the provider sent.
        received = getattr(self.source, "chunks", None)
        return any(_has_usage(chunk) for chunk in (received if isinstance(received, list) else self.chunks))

    def _assemble(self, reported: bool) -> ModelResponse:
        from routoo._litellm import litellm

        try:
            response = litellm.stream_chunk_builder(
                self.chunks,
                messages=self.plan.messages,
                logging_obj=self.logging_obj,
                count_prompt_tokens=lambda: self.decision.prompt_tokens,  # if the stream had no usage
            )
        except Exception:  # chunks litellm cannot assemble: keep the usage they reported
            response = None
        if response is None:
            usage = (
                next((c.usage for c in reversed(self.chunks) if _has_usage(c)), None) if reported else None
            )
            response = litellm.ModelResponse(model=self.model, usage=usage)
        return response


def _has_usage(chunk: Any) -> bool:
    usage = chunk.get("usage") if isinstance(chunk, Mapping) else getattr(chunk, "usage", None)
    if isinstance(usage, Mapping):
        return bool(usage.get("total_tokens") or usage.get("completion_tokens"))
    return usage is not None and bool(
        getattr(usage, "total_tokens", 0) or getattr(usage, "completion_tokens", 0)
    )


class _RoutedChunks:
    """What both stream kinds report: the decision at once, cost and usage at the end."""

    _ledger: _StreamLedger
    decision: RoutingDecision
    model: str

    def _watch(self) -> None:
        # Dropped unclosed, the stream still closes its reservation; the callback holds the
        # ledger, not the stream, so it does not keep the stream alive.
        weakref.finalize(self, self._ledger.drop)

    @property
    def cost_usd(self) -> float | None:
        """USD charged, once the stream is exhausted or closed."""
        return self._ledger.cost_usd

    @property
    def usage(self) -> dict[str, int] | None:
        """prompt/completion/total tokens received, once the stream is exhausted or closed."""
        return self._ledger.usage

    @property
    def call_id(self) -> str | None:
        """The stream's row in the router's decision log once it ended or was closed; None: not logged."""
        return self._ledger.call_id

    @property
    def response(self) -> ModelResponse | None:
        """The whole response assembled from the chunks, once the stream is exhausted or closed."""
        return self._ledger.response


class RoutedStream(_RoutedChunks):
    """Iterate for litellm chunks; close it (or use ``with``) when you leave it unfinished."""

    def __init__(
        self, ledger: Ledger, plan: CallPlan, attempt: Attempt, chunks: Iterator[Any], first: Any
    ) -> None:
        self._ledger = _StreamLedger(ledger, plan, attempt, chunks, first)
        self._chunks = chunks
        self.decision = self._ledger.decision
        self.model = attempt.model
        self._watch()

    def __iter__(self) -> RoutedStream:
        return self

    def __next__(self) -> Any:
        if self._ledger.pending:
            return self._ledger.pending.pop(0)
        try:
            chunk = next(self._chunks)
        except StopIteration:
            self._ledger.finish(ended=True)
            raise
        except BaseException:  # a failure or an interrupt: settled as cut short
            self._ledger.finish(ended=False)
            raise
        self._ledger.chunks.append(chunk)
        return chunk

    def close(self) -> None:
        """Stop early (settled as cut short unless the provider's usage already came)."""
        self._ledger.finish(ended=False)
        if close := getattr(self._chunks, "close", None):
            close()

    def __enter__(self) -> RoutedStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncRoutedStream(_RoutedChunks):
    """Async-iterate for litellm chunks; ``aclose`` (or ``async with``) when you leave it unfinished."""

    def __init__(
        self, ledger: Ledger, plan: CallPlan, attempt: Attempt, chunks: AsyncIterator[Any], first: Any
    ) -> None:
        self._ledger = _StreamLedger(ledger, plan, attempt, chunks, first)
        self._chunks = aiter(chunks)
        self.decision = self._ledger.decision
        self.model = attempt.model
        self._watch()

    def __aiter__(self) -> AsyncRoutedStream:
        return self

    async def __anext__(self) -> Any:
        if self._ledger.pending:
            return self._ledger.pending.pop(0)
        try:
            chunk = await anext(self._chunks)
        except StopAsyncIteration:
            self._ledger.finish(ended=True)
            raise
        except BaseException:  # a failure or a cancellation: settled as cut short
            self._ledger.finish(ended=False)
            raise
        self._ledger.chunks.append(chunk)
        return chunk

    async def aclose(self) -> None:
        """Stop early (settled as cut short unless the provider's usage already came)."""
        self._ledger.finish(ended=False)
        if aclose := getattr(self._chunks, "aclose", None):
            await aclose()  # releases the provider's connection

    async def __aenter__(self) -> AsyncRoutedStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
