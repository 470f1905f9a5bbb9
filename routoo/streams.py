"""Routed streams: the chosen model's chunks as they come, its real cost charged at the end.

A stream is settled once, when it is exhausted, fails or is closed early, for the chunks
received so far; the decision is known before the first chunk.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from routoo.calls import Attempt, CallPlan, Ledger, answered, attach
from routoo.decision import RoutingDecision

if TYPE_CHECKING:
    from litellm import ModelResponse


class _StreamLedger:
    """What a routed stream has seen, settled once when it ends (or is closed)."""

    def __init__(self, ledger: Ledger, plan: CallPlan, attempt: Attempt, chunks: Any, first: Any) -> None:
        self.ledger = ledger
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

    def finish(self) -> None:
        """Build the whole response from the chunks and charge its cost, once."""
        if self.response is not None:
            return
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
            usage = next((c.usage for c in reversed(self.chunks) if getattr(c, "usage", None)), None)
            response = litellm.ModelResponse(model=self.model, usage=usage)
        self.response = response
        self.cost_usd, self.usage = self.ledger.settle(self.attempt, response)
        attach(response, self.decision, self.model, self.cost_usd)


class _RoutedChunks:
    """What both stream kinds report: the decision at once, cost and usage at the end."""

    _ledger: _StreamLedger
    decision: RoutingDecision
    model: str

    @property
    def cost_usd(self) -> float | None:
        """Real USD cost, once the stream is exhausted or closed."""
        return self._ledger.cost_usd

    @property
    def usage(self) -> dict[str, int] | None:
        """prompt/completion/total tokens, once the stream is exhausted or closed."""
        return self._ledger.usage

    @property
    def response(self) -> ModelResponse | None:
        """The whole response assembled from the chunks, once the stream is exhausted or closed."""
        return self._ledger.response


class RoutedStream(_RoutedChunks):
    """Iterate for litellm chunks; close it (or use ``with``) to charge a stream left unfinished."""

    def __init__(
        self, ledger: Ledger, plan: CallPlan, attempt: Attempt, chunks: Iterator[Any], first: Any
    ) -> None:
        self._ledger = _StreamLedger(ledger, plan, attempt, chunks, first)
        self._chunks = chunks
        self.decision = self._ledger.decision
        self.model = attempt.model

    def __iter__(self) -> RoutedStream:
        return self

    def __next__(self) -> Any:
        if self._ledger.pending:
            return self._ledger.pending.pop(0)
        try:
            chunk = next(self._chunks)
        except BaseException:  # the end, or a failure: either way the tokens so far are billed
            self._ledger.finish()
            raise
        self._ledger.chunks.append(chunk)
        return chunk

    def close(self) -> None:
        """Stop early; the chunks received so far are charged."""
        self._ledger.finish()
        if close := getattr(self._chunks, "close", None):
            close()

    def __enter__(self) -> RoutedStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncRoutedStream(_RoutedChunks):
    """Async-iterate for litellm chunks; ``aclose`` (or ``async with``) charges an unfinished one."""

    def __init__(
        self, ledger: Ledger, plan: CallPlan, attempt: Attempt, chunks: AsyncIterator[Any], first: Any
    ) -> None:
        self._ledger = _StreamLedger(ledger, plan, attempt, chunks, first)
        self._chunks = aiter(chunks)
        self.decision = self._ledger.decision
        self.model = attempt.model

    def __aiter__(self) -> AsyncRoutedStream:
        return self

    async def __anext__(self) -> Any:
        if self._ledger.pending:
            return self._ledger.pending.pop(0)
        try:
            chunk = await anext(self._chunks)
        except BaseException:
            self._ledger.finish()
            raise
        self._ledger.chunks.append(chunk)
        return chunk

    async def aclose(self) -> None:
        """Stop early; the chunks received so far are charged."""
        self._ledger.finish()
        if aclose := getattr(self._chunks, "aclose", None):
            await aclose()  # releases the provider's connection

    async def __aenter__(self) -> AsyncRoutedStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
