"""Secrets among litellm parameters: hidden in specs, routers, decisions, responses, logs and saved
files, and still sent to the provider.

The secret search plants a distinct key in every place the Router takes one (its
``litellm_params``, a pool model's, headers, the call's keywords), makes completions, streams,
tool calls and a fallback through routoo.testing's scripted provider, and looks for the keys in
everything the calls produced; the provider's record of each request must hold every key.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import MATH_PROMPT, POEM_PROMPT, saved_predictor
from pydantic import Secret, SecretStr
from secret_search import everything_logged, leaks, recording_provider, saved_leaks, secret

from routoo.pool import ModelPool, ModelSpec
from routoo.router import Router
from routoo.secrets import hide_secrets, is_secret_name, reveal_secrets, without_secrets

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "add",
            "description": "Add two numbers",
            "parameters": {
                "type": "object",
                "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                "required": ["a", "b"],
            },
        },
    }
]


# ------------------------------------------------------------------------- which names
@pytest.mark.parametrize(
    "name",
    [
        "api_key",
        "azure_ad_token",
        "aws_secret_access_key",
        "aws_session_token",
        "vertex_credentials",
        "client_secret",
        "password",
        "x-api-key",
        "Authorization",
        "apiKey",
        "OPENAI_API_KEY",
    ],
)
def test_names_that_say_secret_are_secrets(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name", ["max_tokens", "max_completion_tokens", "temperature", "api_base", "timeout", "stream_options"]
)
def test_ordinary_parameters_are_not_secrets(name: str) -> None:
    assert not is_secret_name(name)


def test_hide_wraps_secrets_and_headers_and_reveal_gives_them_back() -> None:
    credentials = {"type": "service_account", "private_key": secret("vertex")}
    params = {
        "api_key": secret("key"),
        "vertex_credentials": credentials,
        "extra_headers": {"Authorization": f"Bearer {secret('header')}", "X-Trace": "yes"},
        "temperature": 0.2,
        "max_tokens": 10,
        "azure_ad_token": None,
    }
    hidden = hide_secrets(params)
    assert isinstance(hidden["api_key"], SecretStr)
    assert isinstance(hidden["vertex_credentials"], Secret)
    assert isinstance(hidden["extra_headers"]["Authorization"], SecretStr)
    assert hidden["extra_headers"]["X-Trace"] == "yes"
    assert (hidden["temperature"], hidden["max_tokens"], hidden["azure_ad_token"]) == (0.2, 10, None)
    assert not leaks(hidden, str(hidden))
    assert hide_secrets(hidden) == hidden  # already hidden: kept as it is
    assert reveal_secrets(hidden) == params
    assert without_secrets(hidden) == {
        "extra_headers": {"X-Trace": "yes"},
        "temperature": 0.2,
        "max_tokens": 10,
    }


# ------------------------------------------------------------------- specs and routers
def test_a_model_spec_never_shows_its_keys() -> None:
    spec = ModelSpec(
        name="scripted/small",
        litellm_params={
            "api_key": secret("spec"),
            "aws_secret_access_key": secret("aws"),
            "api_base": "http://x",
        },
    )
    assert isinstance(spec.litellm_params["api_key"], SecretStr)
    assert spec.litellm_params["api_base"] == "http://x"
    assert not leaks(repr(spec), str(spec), spec.model_dump(), spec.model_dump_json())
    assert json.loads(spec.model_dump_json())["litellm_params"]["api_key"] == "**********"
    assert reveal_secrets(spec.litellm_params)["api_key"] == secret("spec")
    # A copy (as the pool makes when it fills in prices) keeps them hidden.
    assert isinstance(spec.model_copy(update={"latency_s": 1.0}).litellm_params["api_key"], SecretStr)


def test_a_pool_and_a_router_never_show_their_keys(planted_dataset, tmp_path_factory) -> None:
    recording_provider()
    pool = [{"name": "scripted/small", "like": "math-model", "litellm_params": {"api_key": secret("spec")}}]
    router = Router(
        pool,
        saved_predictor(planted_dataset, tmp_path_factory),
        litellm_params={"api_key": secret("router"), "extra_headers": {"x-api-key": secret("header")}},
    )
    assert isinstance(router.litellm_params["api_key"], SecretStr)
    assert isinstance(router.pool, ModelPool)
    assert not leaks(repr(router), str(router), vars(router), vars(router.pool), router.pool.specs)


def test_router_litellm_params_must_be_a_mapping(planted_dataset, tmp_path_factory) -> None:
    from routoo.errors import ConfigError

    with pytest.raises(ConfigError, match="litellm_params must be a mapping"):
        Router(
            ["scripted/small"], saved_predictor(planted_dataset, tmp_path_factory), litellm_params=["api_key"]
        )


# ---------------------------------------------------------------------- secret search
async def test_the_secret_search_over_everything_router_calls_produce(
    planted_dataset,
    tmp_path_factory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    provider = recording_provider()
    provider.handler.fail(
        "scripted/small", "server_error", times=1
    )  # the first call falls back: a failed attempt
    spec_keys = {
        "api_key": secret("spec-api-key"),
        "aws_secret_access_key": secret("spec-aws-secret"),
        "azure_ad_token": secret("spec-azure-token"),
    }
    pool = [
        {"name": "scripted/small", "like": "math-model", "litellm_params": spec_keys},
        {"name": "scripted/tiny", "like": "poet-model"},
        {"name": "scripted/large", "like": "big-model"},
    ]
    router_keys = {
        "api_key": secret("router-api-key"),
        "extra_headers": {"Authorization": f"Bearer {secret('router-header')}"},
    }
    produced: list[object] = []
    with everything_logged(caplog):
        router = Router(pool, saved_predictor(planted_dataset, tmp_path_factory), litellm_params=router_keys)
        call_key = {"aws_session_token": secret("call-session-token")}
        for routed in (
            router.completion(
                MATH_PROMPT, **call_key
            ),  # scripted/small fails (a fallback), with the spec's keys
            router.completion(POEM_PROMPT),  # to scripted/tiny: the router's
            router.completion(MATH_PROMPT, tools=TOOLS, tool_choice="required"),
            router.completion(POEM_PROMPT, policy={"model": "scripted/large"}),
            await router.acompletion(MATH_PROMPT, **call_key),
        ):
            produced += [
                routed,
                routed.decision,
                routed.decision.to_dict(),
                routed.response.model_dump_json(),
            ]
            produced.append(routed.response._hidden_params)
        with router.stream(POEM_PROMPT, **call_key) as stream:
            produced += [list(stream), stream]
        async with await router.astream(MATH_PROMPT) as stream:
            produced += [[chunk async for chunk in stream], stream]
        produced.append(router.route(MATH_PROMPT))
    assert router.spent > 0
    (tmp_path / "decisions.json").write_text(json.dumps([routed.decision.to_dict()], default=str))
    (tmp_path / "pool.json").write_text(
        json.dumps([spec.model_dump(mode="json") for spec in router.pool.specs])
    )

    planted = [
        *spec_keys.values(),
        router_keys["api_key"],
        secret("router-header"),
        secret("call-session-token"),
    ]
    assert provider.missing(planted) == []
    assert caplog.records, "nothing was logged: the search of the logs would find nothing either"
    assert leaks(*produced) == []
    assert leaks(caplog.text, *(record.getMessage() for record in caplog.records)) == []
    assert leaks(*capfd.readouterr()) == []  # what litellm prints rather than logs
    assert saved_leaks(tmp_path) == []


def test_the_provider_gets_the_spec_key_over_the_router_key(planted_dataset, tmp_path_factory) -> None:
    provider = recording_provider()
    pool = [
        {"name": "scripted/small", "like": "math-model", "litellm_params": {"api_key": secret("spec")}},
        {"name": "scripted/tiny", "like": "poet-model"},
    ]
    router = Router(
        pool, saved_predictor(planted_dataset, tmp_path_factory), litellm_params={"api_key": secret("router")}
    )
    router.completion(MATH_PROMPT, policy={"model": "scripted/small"})
    router.completion(POEM_PROMPT, policy={"model": "scripted/tiny"})
    router.completion(POEM_PROMPT, policy={"model": "scripted/tiny"}, api_key=SecretStr(secret("call")))
    assert [request["api_key"] for request in provider.requests] == [
        secret("spec"),
        secret("router"),
        secret("call"),
    ]


def test_a_provider_error_echoing_a_key_keeps_no_key_in_the_decision(
    planted_dataset, tmp_path_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from routoo._litellm import litellm

    register = recording_provider()
    sent = litellm.completion

    def echoing(**kwargs: object) -> object:
        if kwargs["model"] != "scripted/tiny":  # the others fail, quoting what they were sent
            headers = kwargs.get("extra_headers") or {}
            raise litellm.InternalServerError(
                f"upstream rejected key {kwargs.get('api_key')} with {headers}", "scripted", kwargs["model"]
            )
        return sent(**kwargs)

    monkeypatch.setattr(litellm, "completion", echoing)
    pool = [
        {"name": "scripted/small", "like": "math-model", "litellm_params": {"api_key": secret("spec")}},
        {
            "name": "scripted/large",
            "like": "big-model",
            "litellm_params": {"extra_headers": {"Authorization": f"Bearer {secret('header')}"}},
        },
        {"name": "scripted/tiny", "like": "poet-model"},
    ]
    router = Router(pool, saved_predictor(planted_dataset, tmp_path_factory), max_fallbacks=3)
    routed = router.completion(MATH_PROMPT, policy={"quality_floor": 0.99}, api_key=secret("call"))
    assert routed.model == "scripted/tiny" and len(routed.decision.fallbacks) == 2
    assert all("upstream rejected key **********" in f.message for f in routed.decision.fallbacks)
    assert leaks(routed.decision, routed.decision.to_dict()) == []
    assert [request["api_key"] for request in register.requests] == [secret("call")]  # the key was sent
