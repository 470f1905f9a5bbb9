"""RoutooLLM's secret search: keys planted in every place LlamaIndex users put one never show in a
repr, ``to_dict``/``to_json``, an instrumentation event or span, a callback payload, a response or
a log, and still reach the provider.

The places: a pool model's ``litellm_params``, the Router's ``litellm_params``,
``additional_kwargs`` (a secret parameter and an ``Authorization`` header), and a call's own
keyword given as a ``SecretStr`` (a plain string given to ``chat`` is LlamaIndex's to record
before Routoo sees it). Calls go to routoo.testing's scripted provider, which records every
request (tests/secret_search.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import MATH_PROMPT, POEM_PROMPT, llamaindex_event_handler, saved_predictor
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.callbacks import CallbackManager, LlamaDebugHandler
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.span import SimpleSpan
from llama_index.core.instrumentation.span_handlers import BaseSpanHandler
from llama_index.core.prompts import PromptTemplate
from llama_index.core.tools import FunctionTool
from pydantic import BaseModel, Field, SecretStr
from secret_search import (
    POOL_WITH_KEY,
    adapter_params,
    everything_logged,
    leaks,
    recording_provider,
    saved_leaks,
    secret,
)

from llamaindex_routoo import Router, RoutooLLM
from routoo.secrets import reveal_secrets

ADDITIONAL_KWARGS = adapter_params("additional")


class Events(BaseEventHandler):
    seen: list[Any] = Field(default_factory=list)

    def handle(self, event: Any, **kwargs: Any) -> None:
        self.seen.append((event, event.model_dump_json(), kwargs))


class Spans(BaseSpanHandler[SimpleSpan]):
    seen: list[Any] = Field(default_factory=list)

    def new_span(self, id_: str, bound_args: Any, instance: Any = None, **kwargs: Any) -> SimpleSpan:
        self.seen.append(bound_args.arguments)
        return SimpleSpan(id_=id_)

    def prepare_to_exit_span(
        self, id_: str, bound_args: Any, instance: Any = None, result: Any = None, **kwargs: Any
    ) -> None:
        self.seen.append(result)

    def prepare_to_drop_span(
        self, id_: str, bound_args: Any, instance: Any = None, err: Any = None, **kwargs: Any
    ) -> None:
        self.seen.append(err)


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


class Invoice(BaseModel):
    """An invoice's total and currency."""

    total: float
    currency: str


@pytest.fixture
def predictor_dir(planted_dataset, tmp_path_factory) -> Path:
    return saved_predictor(planted_dataset, tmp_path_factory)


def user(text: str) -> list[ChatMessage]:
    return [ChatMessage(role=MessageRole.USER, content=text)]


def test_routoo_llm_keeps_its_keys_out_of_reprs_and_serialisation(predictor_dir: Path) -> None:
    recording_provider()
    llm = RoutooLLM(POOL_WITH_KEY, predictor_dir, additional_kwargs=ADDITIONAL_KWARGS)
    assert isinstance(llm.additional_kwargs["aws_secret_access_key"], SecretStr)
    assert reveal_secrets(llm.additional_kwargs) == ADDITIONAL_KWARGS
    # As LlamaIndex's own LLMs leave out their api_key, to_dict and to_json leave out the secrets.
    assert llm.to_dict()["additional_kwargs"] == {"extra_headers": {}, "seed": 7}
    shown = [repr(llm), str(llm), llm.to_dict(), llm.to_json(), llm.to_payload(), llm.metadata]
    assert leaks(*shown) == []
    json.loads(llm.to_json())  # still plain JSON


async def test_the_secret_search_over_everything_routoo_llm_produces(
    predictor_dir: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    provider = recording_provider()
    events, spans, debug = Events(), Spans(), LlamaDebugHandler()
    dispatcher = get_dispatcher()
    produced: list[object] = []
    dispatcher.add_span_handler(spans)
    try:
        with everything_logged(caplog), llamaindex_event_handler(events):
            router = Router(
                POOL_WITH_KEY, predictor_dir, litellm_params={"api_key": secret("router-api-key")}
            )
            llm = RoutooLLM(router=router, additional_kwargs=ADDITIONAL_KWARGS)
            llm.callback_manager = CallbackManager([debug])
            call_key = {"aws_session_token": SecretStr(secret("call-session-token"))}
            produced += [
                llm.chat(user(MATH_PROMPT), **call_key),  # to scripted/small: the pool model's key
                llm.complete(POEM_PROMPT),  # to scripted/tiny: the Router's
                list(llm.stream_chat(user(POEM_PROMPT), **call_key)),
                await llm.achat(user(MATH_PROMPT)),
                [response async for response in await llm.astream_complete(MATH_PROMPT, **call_key)],
                llm.chat_with_tools([FunctionTool.from_defaults(fn=add)], user_msg="Please add 2 and 3."),
                llm.predict_and_call([FunctionTool.from_defaults(fn=add)], user_msg="Please add 4 and 5."),
                llm.structured_predict(Invoice, PromptTemplate("Extract: {text}"), text="Total: 3 EUR"),
            ]
    finally:
        dispatcher.span_handlers.remove(spans)
    (tmp_path / "llm.json").write_text(llm.to_json())
    (tmp_path / "responses.json").write_text(json.dumps([repr(thing) for thing in produced]))

    planted = [
        secret("spec-api-key"),
        secret("router-api-key"),
        secret("additional-aws"),
        secret("additional-header"),
        secret("call-session-token"),
    ]
    assert provider.missing(planted) == []
    assert events.seen and spans.seen and debug.get_llm_inputs_outputs()
    assert leaks(*produced) == []
    assert leaks(*events.seen) == []
    assert leaks(*spans.seen) == []
    assert leaks(*debug.get_llm_inputs_outputs(), *debug.get_events()) == []
    assert leaks(caplog.text, *(record.getMessage() for record in caplog.records)) == []
    assert leaks(*capfd.readouterr()) == []  # what litellm prints rather than logs
    assert saved_leaks(tmp_path) == []
