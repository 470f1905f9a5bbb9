"""What the LangChain tests share: a pool of scripted models and a predictor saved to disk.

The predictor is a kNN predictor fitted on conftest.py's planted data, where 'math-model'
is right on arithmetic, 'poet-model' on poems and 'big-model' on both at ten times the
price. The pool's scripted models are scored like them (``like=``); scripted/tiny cannot
call tools or follow response schemas, so tool and structured-output calls never go to it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from routoo.data.dataset import RoutingDataset
from routoo.predictors import KNNPredictor

POOL: list[dict[str, str]] = [
    {"name": "scripted/small", "like": "math-model"},
    {"name": "scripted/tiny", "like": "poet-model"},
    {"name": "scripted/large", "like": "big-model"},
]
POOL_NAMES = [model["name"] for model in POOL]
MATH_PROMPT = "Sam has 12 marbles and buys 30 more. How many marbles does Sam have now?"
POEM_PROMPT = "Write a haiku about the moon, full of vivid imagery."

_saved: dict[Path, Path] = {}


def saved_predictor(
    planted_dataset: Callable[..., RoutingDataset], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The directory of a kNN predictor fitted on the planted data; fitted once per test session."""
    session = tmp_path_factory.getbasetemp()
    if session not in _saved:
        predictor = KNNPredictor(k=5).fit(planted_dataset(n=60))
        _saved[session] = predictor.save(tmp_path_factory.mktemp("langchain-predictor"))
    return _saved[session]
