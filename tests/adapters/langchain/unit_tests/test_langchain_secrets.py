"""RoutooChat's secret search: keys planted in every place LangChain users put one never show in a
repr, ``dumpd``/``dumps``, a callback payload, a traced run, an answer or a log, and still reach
the provider.

The places: a pool model's ``litellm_params``, ``api_key``, ``model_kwargs`` (a secret parameter
and an ``Authorization`` header), ``bind(...)`` and a call's own keywords. Calls go to
routoo.testing's scripted provider, which records every request (tests/secret_search.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import MATH_PROMPT, POEM_PROMPT, saved_predictor
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.load import dumpd, dumps
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool
from langchain_core.tracers.run_collector import RunCollectorCallbackHandler
from pydantic import BaseModel, SecretStr
from secret_search import (
    POOL_WITH_KEY,
    adapter_params,
    everything_logged,
    leaks,
    recording_provider,
    saved_leaks,
    secret,
)

from langchain_routoo import RoutooChat
from routoo.secrets import reveal_secrets


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


class Answer(BaseModel):
    """An answer with the reasoning behind it."""

    answer: str
    reasoning: str


class Payloads(BaseCallbackHandler):
    """Keeps every argument of every callback a chat model run and its chain make."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.seen.append((serialized, messages, kwargs))

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.seen.append((token, kwargs))

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self.seen.append((response, kwargs))

    def on_llm_error(self, error: BaseException, **kwargs: Any) -> None:
        self.seen.append((error, kwargs))

    def on_chain_start(self, serialized: Any, inputs: Any, **kwargs: Any) -> None:
        self.seen.append((serialized, inputs, kwargs))

    def on_chain_end(self, outputs: Any, **kwargs: Any) -> None:
        self.seen.append((outputs, kwargs))


MODEL_KWARGS = adapter_params("model-kwargs")


@pytest.fixture
def predictor_dir(planted_dataset, tmp_path_factory) -> Path:
    return saved_predictor(planted_dataset, tmp_path_factory)


def test_routoo_chat_keeps_its_keys_as_secrets(predictor_dir: Path) -> None:
    recording_provider()
    llm = RoutooChat(
        models=POOL_WITH_KEY, predictor=predictor_dir, api_key=secret("api-key"), model_kwargs=MODEL_KWARGS
    )
    assert isinstance(llm.model_kwargs["aws_secret_access_key"], SecretStr)
    assert isinstance(llm.router.litellm_params["api_key"], SecretStr)
    assert reveal_secrets(llm.router.litellm_params) == {"api_key": secret("api-key"), **MODEL_KWARGS}
    bound = llm.bind(aws_session_token=secret("bound"))
    shown = [repr(llm), str(llm), dumpd(llm), dumps(llm), llm._serialized, repr(bound), dumps(bound)]
    assert leaks(*shown) == []


async def test_the_secret_search_over_everything_routoo_chat_produces(
    predictor_dir: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    provider = recording_provider()
    runs, payloads = RunCollectorCallbackHandler(), Payloads()
    config: Any = {"callbacks": [runs, payloads]}
    produced: list[object] = []
    with everything_logged(caplog):
        llm = RoutooChat(
            models=POOL_WITH_KEY,
            predictor=predictor_dir,
            api_key=secret("api-key"),
            model_kwargs=MODEL_KWARGS,
        )
        bound = llm.bind(aws_session_token=secret("bound-session-token"))
        chain = ChatPromptTemplate.from_messages([("user", "{question}")]) | bound
        call_key = {"azure_ad_token": secret("call-azure-token")}
        produced += [
            llm.invoke(MATH_PROMPT, config=config, **call_key),  # to scripted/small: the pool model's key
            chain.invoke({"question": POEM_PROMPT}, config=config),  # to scripted/tiny: RoutooChat's
            list(llm.stream(POEM_PROMPT, config=config, **call_key)),
            await llm.ainvoke(MATH_PROMPT, config=config),
            [chunk async for chunk in bound.astream(MATH_PROMPT, config=config)],
            llm.bind_tools([add], tool_choice="add").invoke("What is 2 + 3?", config=config, **call_key),
            llm.with_structured_output(Answer).invoke(MATH_PROMPT, config=config),
            [event async for event in llm.astream_events(POEM_PROMPT, version="v2", **call_key)],
        ]
    for name, thing in {"chat.json": llm, "bound.json": bound, "chain.json": chain}.items():
        (tmp_path / name).write_text(dumps(thing, pretty=True))

    planted = [
        secret("spec-api-key"),
        secret("api-key"),
        secret("model-kwargs-aws"),
        secret("model-kwargs-header"),
        secret("bound-session-token"),
        secret("call-azure-token"),
    ]
    assert provider.missing(planted) == []
    assert len(runs.traced_runs) >= 7 and payloads.seen
    assert leaks(*produced) == []
    assert leaks(*payloads.seen) == []
    assert leaks(*(run.model_dump() for run in runs.traced_runs)) == []
    assert leaks(caplog.text, *(record.getMessage() for record in caplog.records)) == []
    assert leaks(*capfd.readouterr()) == []  # what litellm prints rather than logs
    assert saved_leaks(tmp_path) == []
