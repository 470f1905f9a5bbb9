"""Fixtures shared by the whole suite: the real data folder, a throwaway cache in place of the
user's (for every test), a planted toy dataset, and one pool of scripted models with planted
prompts for the router and adapter tests."""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from routoo.paths import cache_root

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


# The cache routoo uses outside the tests, read before isolated_cache points it elsewhere.
USER_CACHE = cache_root()


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


@pytest.fixture
def scripted():
    """routoo.testing's scripted litellm provider, registered afresh (its ``calls`` start empty)."""
    from routoo.testing import register_scripted_provider

    return register_scripted_provider()


@pytest.fixture
def recording_predictor(planted_dataset):
    """A kNN predictor fitted on the planted data that keeps, in ``seen``, every text it was asked about."""
    from routoo.predictors import KNNPredictor

    class RecordingPredictor(KNNPredictor):
        seen: list[str]

        def _predict_texts(self, texts: list[str]):
            self.__dict__.setdefault("seen", []).extend(texts)  # fit predicts too, before ``seen`` is reset
            return super()._predict_texts(texts)

    predictor = RecordingPredictor().fit(planted_dataset())
    predictor.seen = []
    return predictor


class RoutooChatStandardSetup:
    """What LangChain's standard test suites (unit and integration) need to build RoutooChat offline:
    the scripted pool and the planted predictor saved to disk, passed by path. Mix in before the suite."""

    predictor_dir: Path

    @staticmethod
    def register_provider() -> object:
        from routoo.testing import register_scripted_provider

        return register_scripted_provider()

    @pytest.fixture(autouse=True)
    def _offline_pool(self, planted_dataset, tmp_path_factory: pytest.TempPathFactory) -> None:
        self.register_provider()
        self.predictor_dir = saved_predictor(planted_dataset, tmp_path_factory)

    @property
    def chat_model_class(self) -> type:
        from langchain_routoo import RoutooChat

        return RoutooChat

    @property
    def chat_model_params(self) -> dict[str, object]:
        return {"models": POOL, "predictor": str(self.predictor_dir)}


# Settings that build a router, which each adapter refuses beside a given router=.
ROUTER_BUILDING_SETTINGS: list[dict[str, object]] = [
    {"models": POOL},
    {"predictor": "somewhere"},
    {"tradeoff": 1.0},
    {"policy": {"quality_floor": 0.5}},
    {"max_fallbacks": 0},
]


def bad_budget_settings(prefix: str = "") -> list[tuple[dict[str, object], str]]:
    """Budget settings each adapter refuses, with the setting the error must name; ``prefix`` is the
    adapter's key prefix (``routoo_`` for LangChain's config keys)."""
    from routoo.budget import Budget

    budget, mode = f"{prefix}budget", f"{prefix}budget_mode"
    return [
        ({budget: "lots"}, budget),
        ({budget: -1.0}, budget),
        ({budget: True}, budget),
        ({budget: 1.0, mode: "strict"}, mode),
        ({budget: Budget(1.0), mode: "soft"}, mode),
    ]


@contextmanager
def llamaindex_event_handler(handler) -> Iterator[None]:
    """``handler`` hears LlamaIndex's instrumentation events for the block, and no longer after it."""
    from llama_index.core.instrumentation import get_dispatcher

    dispatcher = get_dispatcher()
    dispatcher.add_event_handler(handler)
    try:
        yield
    finally:
        dispatcher.event_handlers.remove(handler)
