"""The live server through the official ``openai`` client: plain, streamed, tools, structured output,
the models list, bad keys and bad requests."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from pydantic import BaseModel
from server_support import (
    ADD_TOOL,
    ALICE,
    EASY,
    HARD,
    client,
    server_fixture,  # noqa: F401  (the fixture `server`)
)

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])
POOL_NAMES = {"scripted/small", "scripted/large", "scripted/tiny"}


def test_a_plain_completion_names_the_routed_model_and_its_cost(server) -> None:
    raw = client(server).chat.completions.with_raw_response.create(
        model="routoo", messages=[{"role": "user", "content": HARD}]
    )
    completion = raw.parse()
    routoo = completion.model_extra["routoo"]
    assert completion.model == "scripted/large" == routoo["model"] == raw.headers["x-routoo-model"]
    assert completion.choices[0].message.content == f"scripted/large answers: {HARD}"
    assert routoo["cost_usd"] > 0 and float(raw.headers["x-routoo-cost-usd"]) == routoo["cost_usd"]
    assert routoo["preset"] == "routoo" == raw.headers["x-routoo-preset"]
    assert routoo["decision"]["rule"] == raw.headers["x-routoo-rule"] == "tradeoff"
    assert {c["model"] for c in routoo["decision"]["candidates"]} == POOL_NAMES
    assert routoo["call_id"] == raw.headers["x-routoo-call-id"]
    assert completion.usage.prompt_tokens > 0 and completion.usage.completion_tokens > 0


def test_an_easy_question_goes_to_a_cheaper_model_than_a_hard_one(server) -> None:
    openai_client = client(server)
    easy = openai_client.chat.completions.create(model="routoo", messages=[{"role": "user", "content": EASY}])
    hard = openai_client.chat.completions.create(model="routoo", messages=[{"role": "user", "content": HARD}])
    assert easy.model == "scripted/small" and hard.model == "scripted/large"
    assert easy.model_extra["routoo"]["cost_usd"] < hard.model_extra["routoo"]["cost_usd"]


def test_presets_are_policies_and_a_pool_model_can_be_pinned(server) -> None:
    openai_client = client(server)
    best = openai_client.chat.completions.create(
        model="routoo-best", messages=[{"role": "user", "content": EASY}]
    )
    pinned = openai_client.chat.completions.create(
        model="scripted/tiny", messages=[{"role": "user", "content": HARD}]
    )
    candidates = best.model_extra["routoo"]["decision"]["candidates"]
    # tradeoff 0: the best predicted, whatever it costs
    assert best.model == max(candidates, key=lambda c: c["predicted_quality"])["model"]
    assert pinned.model == "scripted/tiny" and pinned.model_extra["routoo"]["decision"]["rule"] == "pinned"
    assert pinned.model_extra["routoo"]["preset"] is None


def test_the_models_list_holds_the_presets_and_the_pool(server) -> None:
    listed = {model.id: model for model in client(server).models.list()}
    assert set(listed) == {"routoo", "routoo-cheap", "routoo-best", *POOL_NAMES}
    assert listed["routoo"].owned_by == "routoo" and listed["scripted/small"].owned_by == "scripted"
    assert listed["routoo-best"].model_extra["routoo"]["policy"] == {"tradeoff": 0.0}
    assert client(server).models.retrieve("routoo-cheap").id == "routoo-cheap"


def test_a_stream_sends_the_answer_then_its_cost(server) -> None:
    with client(server).chat.completions.with_streaming_response.create(
        model="routoo",
        messages=[{"role": "user", "content": HARD}],
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        assert response.headers["x-routoo-model"] == "scripted/large"
        assert "x-routoo-cost-usd" not in response.headers  # not known before the end: in the last chunk
        chunks = list(response.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == f"scripted/large answers: {HARD}"
    assert all(chunk.model == "scripted/large" for chunk in chunks)
    usage = [chunk.usage for chunk in chunks if chunk.usage is not None]
    assert len(usage) == 1 and usage[0].completion_tokens > 0
    routoo = chunks[-1].model_extra["routoo"]
    assert routoo["model"] == "scripted/large" and routoo["cost_usd"] > 0 and routoo["cost_basis"] == "usage"


def test_a_stream_sends_usage_only_when_asked(server) -> None:
    chunks = list(
        client(server).chat.completions.create(
            model="routoo", messages=[{"role": "user", "content": EASY}], stream=True
        )
    )
    assert all(chunk.usage is None for chunk in chunks)
    assert chunks[-1].model_extra["routoo"]["cost_usd"] > 0


def test_tools_go_to_a_model_that_calls_them(server) -> None:
    completion = client(server).chat.completions.create(
        model="routoo-cheap",
        messages=[{"role": "user", "content": "Please add 2 and 3."}],
        tools=[ADD_TOOL],
        tool_choice="required",
    )
    call = completion.choices[0].message.tool_calls[0]
    assert call.function.name == "add" and set(json.loads(call.function.arguments)) == {"a", "b"}
    assert completion.choices[0].finish_reason == "tool_calls"
    candidates = {c["model"]: c for c in completion.model_extra["routoo"]["decision"]["candidates"]}
    assert completion.model != "scripted/tiny" and not candidates["scripted/tiny"]["admissible"]


def test_a_streamed_tool_call_arrives_whole(server) -> None:
    chunks = list(
        client(server).chat.completions.create(
            model="routoo",
            messages=[{"role": "user", "content": "add 1 and 2"}],
            tools=[ADD_TOOL],
            stream=True,
        )
    )
    calls = [call for chunk in chunks if chunk.choices for call in chunk.choices[0].delta.tool_calls or []]
    assert [call.function.name for call in calls] == ["add"]
    assert set(json.loads(calls[0].function.arguments)) == {"a", "b"}


class Answer(BaseModel):
    city: str
    population: int


def test_structured_output_follows_the_schema(server) -> None:
    parsed = client(server).chat.completions.parse(
        model="routoo",
        messages=[{"role": "user", "content": "The largest city of France?"}],
        response_format=Answer,
    )
    answer = parsed.choices[0].message.parsed
    assert isinstance(answer, Answer)
    assert parsed.model != "scripted/tiny"  # no response schemas there


def test_json_mode_answers_json(server) -> None:
    completion = client(server).chat.completions.create(
        model="routoo",
        messages=[{"role": "user", "content": "Reply in JSON with the keys name and age."}],
        response_format={"type": "json_object"},
    )
    assert isinstance(json.loads(completion.choices[0].message.content), dict)


@pytest.mark.parametrize("key", ["sk-wrong-0123456789", ""])
def test_a_bad_or_missing_key_is_refused_in_openais_format(server, key: str) -> None:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = httpx.post(
        f"{server.base_url}/chat/completions",
        json={"model": "routoo", "messages": [{"role": "user", "content": EASY}]},
        headers=headers,
    )
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "invalid_api_key" and error["type"] == "invalid_request_error"
    assert set(error) == {"message", "type", "param", "code"}
    with pytest.raises(openai.AuthenticationError):
        client(server, key="sk-wrong-0123456789").models.list()


def test_an_unknown_model_is_404_and_names_the_ones_there_are(server) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        client(server).chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": EASY}])
    assert raised.value.code == "model_not_found" and "routoo-cheap" in raised.value.message


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"messages": [{"role": "user", "content": EASY}], "temprature": 1}, "temprature", "Unrecognized"),
        ({"messages": [{"role": "robot", "content": EASY}]}, None, "role 'robot'"),
        ({"messages": []}, "messages", "messages"),
        ({"messages": [{"role": "user", "content": EASY}], "n": 2}, "n", "n must be 1"),
        ({"messages": [{"role": "user", "content": EASY}], "temperature": 9}, "temperature", "temperature"),
    ],
)
def test_a_bad_request_is_a_400_naming_what_is_wrong(server, body, param, words) -> None:
    response = httpx.post(
        f"{server.base_url}/chat/completions",
        json={"model": "routoo", **body},
        headers={"Authorization": f"Bearer {ALICE}"},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == param and words in error["message"]


def test_a_body_that_is_not_json_is_a_400(server) -> None:
    response = httpx.post(
        f"{server.base_url}/chat/completions", content=b"{nope", headers={"Authorization": f"Bearer {ALICE}"}
    )
    assert response.status_code == 400 and "JSON" in response.json()["error"]["message"]


def test_health_and_readiness(server) -> None:
    root = server.base_url.removesuffix("/v1")
    assert httpx.get(f"{root}/health").json() == {"status": "ok"}
    assert httpx.get(f"{root}/ready").json() == {"status": "ready"}
    missing = httpx.get(f"{root}/v1/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
