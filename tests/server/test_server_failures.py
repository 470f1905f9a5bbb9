"""Failures over the live server: models failing, deadlines, size limits, keys limited to some models."""

from __future__ import annotations

import httpx
import openai
import pytest
from server_support import (
    ALICE,
    BOB,
    HARD,
    client,
    start_server_fixture,  # noqa: F401  (the fixture `start_server`)
)

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])
ASK = [{"role": "user", "content": HARD}]


def test_a_failing_model_falls_back_and_says_so(start_server) -> None:
    server = start_server()
    server.service.scripted.fail("scripted/large", "server_error", times=1)
    completion = client(server).chat.completions.create(model="routoo", messages=ASK)
    fallbacks = completion.model_extra["routoo"]["decision"]["fallbacks"]
    assert completion.model != "scripted/large" and fallbacks[0]["model"] == "scripted/large"


def test_every_model_failing_is_a_502(start_server) -> None:
    server = start_server()
    for model in ("scripted/small", "scripted/large", "scripted/tiny"):
        server.service.scripted.fail(model, "server_error", times=None)
    with pytest.raises(openai.InternalServerError) as raised:
        client(server).chat.completions.create(model="routoo", messages=ASK)
    assert raised.value.status_code == 502 and raised.value.code == "all_models_failed"


def test_a_call_past_its_deadline_is_a_504(start_server) -> None:
    server = start_server(limits={"request_timeout_s": 0.2})
    for model in ("scripted/small", "scripted/large", "scripted/tiny"):
        server.service.scripted.behave(model, latency_s=5.0)
    with pytest.raises(openai.APIStatusError) as raised:
        client(server).chat.completions.create(model="routoo", messages=ASK)
    assert raised.value.status_code == 504 and raised.value.code == "deadline_exceeded"


def test_a_body_over_the_limit_is_a_413(start_server) -> None:
    server = start_server(limits={"max_request_bytes": 2000})
    with pytest.raises(openai.APIStatusError) as raised:
        client(server).chat.completions.create(
            model="routoo", messages=[{"role": "user", "content": "x" * 3000}]
        )
    assert raised.value.status_code == 413 and raised.value.code == "request_too_large"
    assert client(server).chat.completions.create(model="routoo", messages=ASK).choices


def test_too_many_messages_is_a_400(start_server) -> None:
    server = start_server(limits={"max_messages": 2})
    with pytest.raises(openai.BadRequestError, match="at most 2"):
        client(server).chat.completions.create(model="routoo", messages=ASK * 3)


def test_a_key_calls_only_the_models_it_is_given(start_server, tmp_path) -> None:
    server = start_server(
        keys=[{"name": "alice", "secret": ALICE}, {"name": "bob", "secret": BOB, "models": ["routoo-cheap"]}]
    )
    assert [model.id for model in client(server, BOB).models.list()] == ["routoo-cheap"]
    with pytest.raises(openai.PermissionDeniedError) as raised:
        client(server, BOB).chat.completions.create(model="scripted/large", messages=ASK)
    assert raised.value.code == "model_not_allowed"
    assert client(server, BOB).chat.completions.create(model="routoo-cheap", messages=ASK).choices


def test_a_server_without_keys_takes_any_caller_and_records_its_spend(start_server) -> None:
    server = start_server(keys=[])
    client(server, key="anything").chat.completions.create(model="routoo", messages=ASK)
    budget = httpx.get(f"{server.base_url}/routoo/budget").json()
    assert budget["key"] == "anonymous" and budget["spent_usd"] > 0 and budget["limit_usd"] is None
