"""The decision log, offline: every routed call (completion, async, stream, fallback) is one row,
text only when asked, concurrent writers all land, a file it cannot write only warns, feedback
attaches by call_id, the JSONL export round-trips, and no secret reaches the file."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import MATH_PROMPT, POEM_PROMPT, POOL, REPO_ROOT
from reliability_support import fitted
from secret_search import SECRET_PREFIX, leaks, recording_provider, secret

from routoo import DecisionLog
from routoo.errors import ConfigError, DataError
from routoo.router import Router
from routoo.testing import ScriptedLLM, register_scripted_provider


@pytest.fixture
def llm() -> ScriptedLLM:
    return register_scripted_provider()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "calls.sqlite"


def logged_router(log: DecisionLog | str | Path, **settings: object) -> Router:
    return Router(POOL, fitted(), log=log, **settings)


def test_a_completion_is_one_row_with_its_decision_cost_tokens_and_latency(
    llm: ScriptedLLM, path: Path
) -> None:
    router = logged_router(path)
    routed = router.completion(MATH_PROMPT)
    (row,) = DecisionLog(path).rows()
    assert row["call_id"] == routed.call_id == routed.response._hidden_params["routoo"]["call_id"]
    assert (row["model"], row["answered_by"], row["rule"]) == (
        routed.decision.model,
        routed.model,
        routed.decision.rule,
    )
    assert row["cost_usd"] == pytest.approx(routed.cost_usd) and row["cost_basis"] == "usage"
    assert (row["prompt_tokens"], row["completion_tokens"]) == (
        routed.usage["prompt_tokens"],
        routed.usage["completion_tokens"],
    )
    assert row["latency_s"] >= 0 and row["streamed"] is False and row["fallbacks"] == []
    chosen = routed.decision.candidate(routed.model)
    assert row["estimated_cost_usd"] == pytest.approx(chosen.estimated_cost)
    assert row["expected_output_tokens"] == pytest.approx(chosen.expected_output_tokens)
    assert [c["model"] for c in row["candidates"]] == [c.model for c in routed.decision.candidates]
    assert row["candidates"][0]["predicted_quality"] == pytest.approx(
        routed.decision.candidates[0].predicted_quality
    )
    assert row["warnings"] == routed.decision.warnings
    assert row["prompt"] is None and row["answer"] is None  # text is opt-in
    assert row["feedback_score"] is None and row["feedback_thumbs"] is None


def test_text_is_kept_only_when_asked(llm: ScriptedLLM, path: Path) -> None:
    routed = logged_router(DecisionLog(path, record_text=True)).completion(POEM_PROMPT)
    (row,) = DecisionLog(path).rows()
    assert row["prompt"] == [{"role": "user", "content": POEM_PROMPT}]
    assert row["answer"] == routed.response.choices[0].message.content and row["answer"]


async def test_async_calls_and_a_fallback_are_recorded(llm: ScriptedLLM, path: Path) -> None:
    router = logged_router(path)
    llm.fail("scripted/small", "rate_limit")
    routed = await router.acompletion(MATH_PROMPT)
    plain = await router.acompletion(MATH_PROMPT)
    first, second = DecisionLog(path).rows()
    assert first["call_id"] == routed.call_id != second["call_id"] == plain.call_id
    assert first["fallbacks"] == [{"model": "scripted/small", "error_type": "RateLimitError"}]
    assert first["answered_by"] == routed.model != first["model"] == "scripted/small"
    assert second["fallbacks"] == [] and second["answered_by"] == "scripted/small"


def test_streams_are_recorded_once_when_they_settle(llm: ScriptedLLM, path: Path) -> None:
    router = logged_router(path)
    stream = router.stream(POEM_PROMPT)
    assert stream.call_id is None
    list(stream)
    stream.close()  # a no-op once settled: still one row
    with router.stream(POEM_PROMPT) as cut_short:
        next(iter(cut_short))
    whole, short = DecisionLog(path).rows()
    assert whole["call_id"] == stream.call_id and whole["streamed"] is True
    assert whole["cost_usd"] == pytest.approx(stream.cost_usd) and whole["cost_basis"] == "usage"
    assert whole["completion_tokens"] == stream.usage["completion_tokens"] > 0
    assert short["call_id"] == cut_short.call_id and short["cost_basis"] == "reserved"
    assert short["cost_usd"] == pytest.approx(cut_short.cost_usd)


async def test_async_streams_are_recorded(llm: ScriptedLLM, path: Path) -> None:
    stream = await logged_router(path).astream(MATH_PROMPT)
    chunks = [chunk async for chunk in stream]
    (row,) = DecisionLog(path).rows()
    assert chunks and row["call_id"] == stream.call_id and row["streamed"] is True
    assert row["cost_usd"] == pytest.approx(stream.cost_usd)


def test_two_hundred_calls_from_threads_all_land(llm: ScriptedLLM, path: Path) -> None:
    router = logged_router(path)
    with ThreadPoolExecutor(max_workers=16) as pool:
        call_ids = list(pool.map(lambda _: router.completion(MATH_PROMPT).call_id, range(200)))
    rows = DecisionLog(path).rows()
    assert len(rows) == 200 and {row["call_id"] for row in rows} == set(call_ids)
    assert sum(row["cost_usd"] for row in rows) == pytest.approx(router.spent)


WRITER = """
import sys
sys.path[:0] = [{tests!r}, {core!r}]
from conftest import MATH_PROMPT, POOL
from reliability_support import fitted
from routoo.router import Router
from routoo.testing import register_scripted_provider
register_scripted_provider()
router = Router(POOL, fitted(), log={path!r})
for _ in range(25):
    router.completion(MATH_PROMPT)
"""


def test_several_processes_share_one_file(path: Path) -> None:
    tests = REPO_ROOT / "tests"
    script = WRITER.format(tests=str(tests), core=str(tests / "core"), path=str(path))
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    writers = [subprocess.Popen([sys.executable, "-c", script], env=env) for _ in range(3)]
    assert [writer.wait(timeout=300) for writer in writers] == [0, 0, 0]
    assert len({row["call_id"] for row in DecisionLog(path).rows()}) == 75


def test_a_locked_file_warns_and_the_call_still_returns(
    llm: ScriptedLLM, path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    router = logged_router(DecisionLog(path, timeout_s=0.05))
    router.completion(MATH_PROMPT)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another writer holds the file
    with caplog.at_level(logging.WARNING, logger="routoo"):
        routed = router.completion(MATH_PROMPT)
    holder.execute("ROLLBACK")
    holder.close()
    assert routed.model and routed.call_id is None
    assert routed.response._hidden_params["routoo"]["call_id"] is None
    assert "decision log" in caplog.text and "locked" in caplog.text
    router.completion(MATH_PROMPT)  # once free, calls are logged again
    assert len(DecisionLog(path).rows()) == 2


@pytest.mark.parametrize("where", ["a folder", "under a missing folder", "a read-only file"])
def test_a_file_it_cannot_write_warns_and_the_call_still_returns(
    llm: ScriptedLLM, tmp_path: Path, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    target = {"a folder": tmp_path, "under a missing folder": tmp_path / "nowhere" / "calls.sqlite"}.get(
        where
    )
    if target is None:
        if os.geteuid() == 0:
            pytest.skip("root writes read-only files")
        target = tmp_path / "calls.sqlite"
        logged_router(target).completion(MATH_PROMPT)
        for file in tmp_path.iterdir():
            file.chmod(0o444)
    with caplog.at_level(logging.WARNING, logger="routoo"):
        routed = logged_router(target).completion(MATH_PROMPT)
    assert routed.model and routed.cost_usd > 0 and routed.call_id is None
    assert f"the decision log {target} skipped a call" in caplog.text


def test_the_jsonl_export_round_trips(llm: ScriptedLLM, path: Path, tmp_path: Path) -> None:
    router = logged_router(DecisionLog(path, record_text=True))
    router.completion(MATH_PROMPT)
    router.completion(POEM_PROMPT)
    log = DecisionLog(path)
    assert log.to_jsonl(tmp_path / "calls.jsonl") == 2
    exported = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    assert exported == log.rows() == list(log)


def test_feedback_attaches_by_call_id(llm: ScriptedLLM, path: Path) -> None:
    router = logged_router(path)
    first, second = router.completion(MATH_PROMPT), router.completion(POEM_PROMPT)
    router.log.add_feedback(first.call_id, thumbs=True)
    router.log.add_feedback(first.call_id, score=0.25)  # adds to the thumbs, does not erase them
    rows = {row["call_id"]: row for row in router.log.rows()}
    assert (rows[first.call_id]["feedback_thumbs"], rows[first.call_id]["feedback_score"]) == (True, 0.25)
    assert rows[second.call_id]["feedback_thumbs"] is None and rows[second.call_id]["feedback_time"] is None
    with pytest.raises(DataError, match="no call with call_id 'nope'"):
        router.log.add_feedback("nope", thumbs=False)
    for bad in [{}, {"score": float("nan")}, {"score": "good"}, {"thumbs": "up"}]:
        with pytest.raises(DataError):
            router.log.add_feedback(first.call_id, **bad)


def test_no_secret_reaches_the_file(path: Path) -> None:
    provider = recording_provider()
    router = Router(
        [{**POOL[0], "litellm_params": {"api_key": secret("spec-key")}}, *POOL[1:]],
        fitted(),
        litellm_params={"api_key": "sk-ROUTOO-SECRET-LOG"},
        log=DecisionLog(path, record_text=True),
    )
    routed = router.completion(MATH_PROMPT, extra_headers={"Authorization": f"Bearer {secret('header')}"})
    router.stream(MATH_PROMPT, aws_secret_access_key=secret("aws")).close()
    assert routed.model == "scripted/small" and not provider.missing([secret("spec-key"), secret("header")])
    router.log.close()  # the text of the WAL too, as it stands
    files = list(path.parent.iterdir())
    assert files and not [file for file in files if SECRET_PREFIX.encode() in file.read_bytes()]
    assert not leaks(router.log.rows(), repr(router.log))


def test_log_settings_are_checked(tmp_path: Path) -> None:
    assert (
        logged_router(None).log is None
        and logged_router(str(tmp_path / "a.sqlite")).log.path.name == "a.sqlite"
    )
    for bad in [{"log": 3}, {"log": ""}]:
        with pytest.raises(ConfigError, match=r"log|path"):
            Router(POOL, fitted(), **bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="record_text"):
        DecisionLog(tmp_path / "a.sqlite", record_text="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="timeout_s"):
        DecisionLog(tmp_path / "a.sqlite", timeout_s=-1)
    with pytest.raises(DataError, match="no decision log"):
        DecisionLog(tmp_path / "missing.sqlite").rows()
    assert not (tmp_path / "a.sqlite").exists()  # nothing is opened until a call is logged
