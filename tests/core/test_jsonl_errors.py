"""Bad input to Routoo's JSONL format and to the Router's prompts: every error names the file, the
line and what was wrong, and a prompt a provider would refuse is refused before any call is made."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import POOL, saved_predictor

from routoo.data import load_jsonl, read_prompts_jsonl
from routoo.errors import DataError, PriceNotFoundError
from routoo.pricing import ModelPrice
from routoo.prompts import ROLES, validate_prompt
from routoo.router import Router
from routoo.testing import register_scripted_provider

PRICES = {"cheap": ModelPrice(1e-7, 2e-7), "dear": ModelPrice(1e-5, 3e-5)}
GOOD = b'{"prompt": "fine", "scores": {"cheap": 1.0}}\n'


def write_bytes(path: Path, *lines: bytes) -> Path:
    path.write_bytes(GOOD + b"".join(line + b"\n" for line in lines))
    return path


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            b'{"prompt": "caf\xe9", "scores": {"cheap": 1}}',
            r"bad\.jsonl:2: not valid UTF-8 \(byte 0xe9 at column 16\)",
        ),
        (
            b'{"prompt": "x", "scores": {"cheap": 1}',
            r"bad\.jsonl:2: not valid JSON \(Expecting ',' delimiter",
        ),
        (b'{"prompt": "x", "scores": {"cheap": NaN}}', r"bad\.jsonl:2: NaN is not valid JSON"),
        (b'{"prompt": "x", "scores": {"cheap": Infinity}}', r"bad\.jsonl:2: Infinity is not valid JSON"),
        (
            b'{"prompt": "x", "scores": {"cheap": true}}',
            r"bad\.jsonl:2: scores of 'cheap' must be in \[0, 1\], got True",
        ),
        (b'{"prompt": "x", "scores": {"cheap": false}}', r"bad\.jsonl:2: scores of 'cheap' .* got False"),
        (
            b'{"prompt": "x", "scores": {"cheap": 1}, "costs": {"cheap": true}}',
            r"bad\.jsonl:2: costs of 'cheap' must be a non-negative number, got True",
        ),
        (
            b'{"prompt": "x", "scores": {"cheap": 1}, "output_tokens": {"cheap": false}}',
            r"bad\.jsonl:2: output_tokens of 'cheap'",
        ),
        (
            b'{"prompt": "x", "scores": {"cheap": 0.1, "cheap": 0.9}}',
            r"bad\.jsonl:2: an object gives the key\(s\) \['cheap'\] more than once",
        ),
        (
            b'{"prompt": "x", "prompt": "y", "scores": {"cheap": 1}}',
            r"bad\.jsonl:2: .*\['prompt'\] more than once",
        ),
        (
            b'{"prompt": [{"role": "user", "content": null}], "scores": {"cheap": 1}}',
            r"bad\.jsonl:2: message 0 \(user\) has content null",
        ),
        (
            b'{"prompt": [{"role": "human", "content": "hi"}], "scores": {"cheap": 1}}',
            r"bad\.jsonl:2: message 0 has role 'human'; the roles are",
        ),
        (
            b'{"prompt": [{"role": "user", "content": {"text": "hi"}}], "scores": {"cheap": 1}}',
            r"bad\.jsonl:2: message 0 has content of type dict",
        ),
        (
            b'{"prompt": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": null}],'
            b' "model_a": "cheap", "model_b": "dear", "winner": "tie"}',
            r"bad\.jsonl:2: message 1 \(assistant\) has content null",
        ),
    ],
)
def test_every_bad_line_names_file_line_and_what_was_wrong(tmp_path: Path, line: bytes, message: str) -> None:
    path = write_bytes(tmp_path / "bad.jsonl", line)
    with pytest.raises(DataError, match=message):
        load_jsonl(path, prices=PRICES)


def test_a_missing_price_names_the_line(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "d.jsonl", b'{"prompt": "Hello", "scores": {"in-house-llm": 0.5}}')
    with pytest.raises(PriceNotFoundError, match=r"d\.jsonl:2: .*'in-house-llm'"):
        load_jsonl(path, prices=PRICES)


def test_prompt_files_are_read_as_strictly(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "prompts.jsonl", b'{"prompt": "\xff"}')
    with pytest.raises(DataError, match=r"prompts\.jsonl:2: not valid UTF-8"):
        read_prompts_jsonl(path)
    path = write_bytes(tmp_path / "prompts.jsonl", b'{"prompt": [{"role": "robot", "content": "x"}]}')
    with pytest.raises(DataError, match=r"prompts\.jsonl:2: message 0 has role 'robot'"):
        read_prompts_jsonl(path)


def test_valid_conversations_still_load(tmp_path: Path) -> None:
    conversation = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "user", "content": "Thanks! And tomorrow?"},
    ]
    path = tmp_path / "ok.jsonl"
    path.write_text(json.dumps({"prompt": conversation, "scores": {"cheap": 1, "dear": 0}}) + "\n")
    dataset = load_jsonl(path, prices=PRICES)
    np.testing.assert_array_equal(dataset.quality, [[1.0, 0.0]])


@pytest.mark.parametrize("role", ROLES)
def test_every_known_role_is_accepted(role: str) -> None:
    validate_prompt([{"role": role, "content": "text"}])


# ------------------------------------------------------------------------- the Router
@pytest.mark.parametrize(
    ("messages", "message"),
    [
        ([{"role": "user", "content": None}], r"messages: message 0 \(user\) has content null"),
        ([{"role": "bot", "content": "hi"}], r"messages: message 0 has role 'bot'"),
        (
            [{"role": "user", "content": "hi"}, {"role": "assistant", "content": None}],
            r"message 1 \(assistant\) has content null; only an assistant turn calling tools may",
        ),
        ([{"role": "user", "content": 42}], r"message 0 has content of type int"),
    ],
)
def test_the_router_refuses_bad_messages_before_any_call(
    planted_dataset, tmp_path_factory, messages: list[dict[str, object]], message: str
) -> None:
    provider = register_scripted_provider()
    router = Router(POOL, saved_predictor(planted_dataset, tmp_path_factory))
    with pytest.raises(DataError, match=message):
        router.completion(messages)
    with pytest.raises(DataError, match=message):
        router.stream(messages)
    with pytest.raises(DataError, match=message):
        router.route(messages)
    assert provider.calls == [] and router.spent == 0.0
