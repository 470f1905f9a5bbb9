"""``routoo route --prompts``: a decision per prompt of a file, in order, as ``Router.route`` makes
it; a prompt the router refuses is a line with its error, not the end of the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import MATH_PROMPT, POEM_PROMPT, POOL, saved_predictor

from routoo.batch_routing import route_batch
from routoo.budget import budget_scope
from routoo.cli import main
from routoo.router import Router


@pytest.fixture
def predictor_dir(planted_dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return saved_predictor(planted_dataset, tmp_path_factory)


def test_routoo_route_writes_one_decision_per_prompt_in_file_order(
    scripted: object, predictor_dir: Path, tmp_path: Path
) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in [MATH_PROMPT, POEM_PROMPT] * 3))
    out = tmp_path / "decisions.jsonl"
    models = ",".join(f"{m['name']}={m['like']}" for m in POOL)
    assert (
        main(
            [
                "route",
                "--prompts",
                str(prompts),
                "--models",
                models,
                "--model",
                str(predictor_dir),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    decisions = [json.loads(line) for line in out.read_text().splitlines()]
    router = Router(POOL, str(predictor_dir))
    assert [d["index"] for d in decisions] == list(range(6))
    assert [d["model"] for d in decisions] == [router.route(p).model for p in [MATH_PROMPT, POEM_PROMPT] * 3]


def test_a_prompt_the_router_refuses_is_a_line_with_its_error(scripted: object, predictor_dir: Path) -> None:
    router = Router(POOL, str(predictor_dir))
    with budget_scope(1e-12):  # no model fits
        (decision,) = route_batch(router, [MATH_PROMPT])
    assert decision["index"] == 0 and decision["error"].startswith("BudgetExceededError")


def test_routoo_route_needs_one_prompt_or_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["route", "--models", "gpt-4o"]) == 2
    assert "give one prompt, or a file of them" in capsys.readouterr().err
