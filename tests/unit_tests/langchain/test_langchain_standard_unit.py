"""LangChain's standard unit tests for RoutooChat (langchain-tests ChatModelUnitTests).

The model is built from a predictor saved to disk (the path form of ``predictor=``) over
routoo.testing's scripted models. Skipped standard tests, and why:

- test_init_from_env: RoutooChat reads no settings from the environment; provider API keys
  are read by litellm itself, per provider.
- test_serdes: RoutooChat is not LangChain-serialisable: it holds a router and a predictor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import POOL, saved_predictor
from langchain_tests.unit_tests import ChatModelUnitTests

from langchain_routoo import RoutooChat
from routoo.testing import register_scripted_provider


class TestRoutooChatStandardUnit(ChatModelUnitTests):
    predictor_dir: Path

    @pytest.fixture(autouse=True)
    def _offline_pool(self, planted_dataset, tmp_path_factory) -> None:
        register_scripted_provider()
        self.predictor_dir = saved_predictor(planted_dataset, tmp_path_factory)

    @property
    def chat_model_class(self) -> type[RoutooChat]:
        return RoutooChat

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"models": POOL, "predictor": str(self.predictor_dir)}
