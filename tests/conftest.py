"""Fixtures shared by the whole suite: the real data folder, a throwaway cache in place of the
user's (for every test), a planted toy dataset, and one pool of scripted models with planted
prompts for the router and adapter tests."""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the Makefile and benchmarks set it

REPO_ROOT = Path(__file__).resolve().parent.parent


def find_shared_data() -> Path | None:
    """``$ROUTOO_DATA_DIR`` or ``../shared/data`` beside the checkout, if present."""
    candidates = [os.environ.get("ROUTOO_DATA_DIR"), REPO_ROOT.parent / "shared" / "data"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "README.md").is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real routing data; tests that use it skip cleanly when it is absent."""
    path = find_shared_data()
    if path is None:
        pytest.skip("../shared/data is not present (set ROUTOO_DATA_DIR to run this test)")
    return path


MATH_TOPICS = ["apples", "trains", "coins", "marbles", "tickets", "boxes", "pencils", "cookies"]
POEM_TOPICS = ["the ocean", "autumn leaves", "a lonely lighthouse", "the moon", "winter snow", "a garden"]


def planted_prompts(n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """``n`` prompts, half arithmetic word problems and half poetry requests; returns is_math."""
    rng = random.Random(seed)
    prompts, is_math = [], []
    for i in range(n):
        if i % 2 == 0:
            a, b = rng.randint(2, 99), rng.randint(2, 99)
            topic = rng.choice(MATH_TOPICS)
            prompts.append(f"Sam has {a} {topic} and buys {b} more. How many {topic} does Sam have now?")
            is_math.append(True)
        else:
            topic = rng.choice(POEM_TOPICS)
            style = rng.choice(["haiku", "sonnet", "short poem", "limerick"])
            prompts.append(f"Write a {style} about {topic}, full of vivid imagery.")
            is_math.append(False)
    return prompts, np.array(is_math)


# The cache routoo uses outside the tests: ``$ROUTOO_CACHE_DIR`` as the run began, or the default.
USER_CACHE = Path(os.environ.get("ROUTOO_CACHE_DIR") or Path.home() / ".cache" / "routoo").expanduser()

@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every test runs with ``$ROUTOO_CACHE_DIR`` in this session's temporary folder, never the user's.

    One cache for the whole session, so that what is slow to build (the static embedding
    table, the joined MMLU-Pro set) is built once; tests that need an empty cache point
    ``ROUTOO_CACHE_DIR`` or ``cache_dir`` at their own ``tmp_path``.
    """
    from routoo import embeddings

    root = tmp_path_factory.mktemp("routoo-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ROUTOO_CACHE_DIR", str(root))
        patch.delenv("ROUTOO_NO_EMBED_CACHE", raising=False)
        patch.setattr(embeddings, "_ENCODERS", {})  # encoders made before now hold the user's cache
        yield root


@pytest.fixture
def planted_dataset():
    """Three models with a planted pattern: 'math-model' is right on arithmetic, 'poet-model'
    on poems, 'big-model' on both but costs ten times more."""
    from routoo.data.dataset import RoutingDataset

    def make(n: int = 120, seed: int = 0, noise: float = 0.0) -> RoutingDataset:
        prompts, is_math = planted_prompts(n, seed)
        rng = np.random.default_rng(seed)
        quality = np.stack([is_math, ~is_math, np.ones(n, dtype=bool)], axis=1).astype(float)
        flips = rng.random(quality.shape) < noise
        quality[flips] = 1.0 - quality[flips]
        cost = np.tile([0.001, 0.001, 0.01], (n, 1))
        return RoutingDataset(
            name="planted",
            prompts=prompts,
            models=["math-model", "poet-model", "big-model"],
            quality=quality,
            cost=cost,
            input_tokens=np.full(n, 20.0),
            output_tokens=np.tile([50.0, 80.0, 60.0], (n, 1)),
            categories=["math" if m else "poetry" for m in is_math],
            source_ids=[str(i) for i in range(n)],
        )

    return make


# The one pool of scripted models (routoo.testing) of the router and adapter tests, scored like
# the planted models: small as math-model, tiny (the cheapest, with a 2,048-token window) as
# poet-model, large (the priciest, with vision) as big-model. scripted/tiny cannot call tools or
# follow response schemas, so tool and structured-output calls never go to it. MATH_PROMPT and
# POEM_PROMPT are one planted prompt of each kind, as planted_prompts writes them.
POOL: list[dict[str, str]] = [
    {"name": "scripted/small", "like": "math-model"},
    {"name": "scripted/tiny", "like": "poet-model"},
    {"name": "scripted/large", "like": "big-model"},
]
POOL_NAMES = [model["name"] for model in POOL]
MATH_PROMPT = "Sam has 12 marbles and buys 30 more. How many marbles does Sam have now?"
POEM_PROMPT = "Write a haiku about the moon, full of vivid imagery."

_saved: dict[Path, Path] = {}


def saved_predictor(planted_dataset: Callable[..., object], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory of a kNN predictor fitted on the planted data; fitted once per test session."""
    session = tmp_path_factory.getbasetemp()
    if session not in _saved:
        from routoo.predictors import KNNPredictor

        predictor = KNNPredictor(k=5).fit(planted_dataset(n=60))
        _saved[session] = predictor.save(tmp_path_factory.mktemp("langchain-predictor"))
    return _saved[session]
