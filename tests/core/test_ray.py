"""Ray on a local instance (the ``routoo[ray]`` extra, which CI installs): the label executor gives
the labels the local one gives, one hard budget and one rate limit hold across its workers, and
batch routing decides as the router does here."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
from conftest import MATH_PROMPT, POEM_PROMPT, POOL, saved_predictor

from routoo.budget import Budget
from routoo.labelling import Labeller, LabelStore, LabelTask, LocalExecutor, RegexMatch
from routoo.labelling.command import build_router

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")
from routoo.labelling.ray_executor import RayExecutor  # noqa: E402

MODELS = ["scripted/small", "scripted/tiny", "scripted/large"]
# Scripted models answer "scripted/<model> answers: <the question>": a reference naming a model
# marks that model's answers right, the others wrong.
TASKS = [LabelTask(f"t{i}", f"Question {i}: name a number.", MODELS[i % 3]) for i in range(30)]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def factory(planted_dataset, tmp_path_factory: pytest.TempPathFactory) -> functools.partial:
    predictor = str(saved_predictor(planted_dataset, tmp_path_factory))
    limits = {"providers": {"scripted": {"requests_per_minute": 100_000}}}
    return functools.partial(build_router, POOL, predictor, limits, True)


def test_the_ray_executor_gives_the_labels_the_local_one_gives(
    local_ray: None, factory: functools.partial, tmp_path: Path
) -> None:
    labels = {}
    for name, executor in (
        ("local", LocalExecutor()),
        ("ray", RayExecutor(factory, workers=2, batch_size=8)),
    ):
        labeller = Labeller(factory(), [RegexMatch()], MODELS, executor=executor)
        store = LabelStore(tmp_path / f"{name}.sqlite")
        summary = labeller.run(TASKS, store)
        assert summary.sent["answer"] == len(TASKS) * len(MODELS) and summary.left == 0
        labels[name] = labeller.labels(TASKS, store)
    np.testing.assert_array_equal(labels["ray"].quality, labels["local"].quality)
    assert labels["ray"].quality.sum() == len(TASKS)  # one right answer per task
    np.testing.assert_allclose(labels["ray"].cost, labels["local"].cost)


def test_one_hard_budget_holds_across_ray_workers_and_a_rerun_resumes(
    local_ray: None, factory: functools.partial, tmp_path: Path
) -> None:
    labeller = Labeller(factory(), [RegexMatch()], MODELS, max_tokens=32)
    labeller.executor = RayExecutor(factory, workers=2, batch_size=4)
    store = LabelStore(tmp_path / "run.sqlite")
    budget = Budget(labeller.estimate(TASKS, store).total_usd / 4)
    summary = labeller.run(TASKS, store, budget)
    spent = sum(answer.cost_usd for answer in store.answers().values())
    assert summary.stopped == "budget" and summary.left > 0
    assert 0 < spent <= budget.limit_usd and budget.spent == pytest.approx(spent)
    rest = labeller.run(TASKS, store, Budget(10.0))
    assert rest.stopped is None and rest.left == 0
    assert len(store.answers()) == len(TASKS) * len(MODELS)


def test_every_worker_books_from_one_rate_limit_schedule(local_ray: None) -> None:
    from routoo.labelling.ray_executor import _SharedRateLimiter
    from routoo.rate_limits import RateLimiter

    host = ray.remote(RateLimiter).remote({"providers": {"scripted": {"requests_per_minute": 2}}})
    first, second = _SharedRateLimiter(host), _SharedRateLimiter(host)  # as two workers hold them
    assert first.reserve("scripted", 10) == 0 and second.reserve("scripted", 10) == 0  # the burst
    assert second.reserve("scripted", 10) > 0 and first.reserve("scripted", 10) > 0
    assert first.reserve("openai", 10) == 0  # other providers are not limited


def test_batch_routing_on_ray_decides_as_the_router_does_here(
    local_ray: None, factory: functools.partial
) -> None:
    from routoo.batch_routing import route_batch, route_batch_on_ray

    prompts = [task.prompt for task in TASKS] + [MATH_PROMPT, POEM_PROMPT]
    here = list(route_batch(factory(), prompts))
    there = sorted(route_batch_on_ray(factory, prompts, workers=2, batch_size=5), key=lambda d: d["index"])
    assert [d["index"] for d in there] == list(range(len(prompts)))
    assert [(d["model"], d["rule"]) for d in there] == [(d["model"], d["rule"]) for d in here]
