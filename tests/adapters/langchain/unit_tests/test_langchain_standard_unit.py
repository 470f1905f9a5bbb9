"""LangChain's standard unit tests for RoutooChat (langchain-tests ChatModelUnitTests).

The model is built from a predictor saved to disk (the path form of ``predictor=``) over
routoo.testing's scripted models. Skipped standard tests, and why:

- test_init_from_env: RoutooChat reads no settings from the environment; provider API keys
  are read by litellm itself, per provider.
- test_serdes: RoutooChat is not LangChain-serialisable: it holds a router and a predictor.
"""

from __future__ import annotations

from conftest import RoutooChatStandardSetup
from langchain_tests.unit_tests import ChatModelUnitTests


class TestRoutooChatStandardUnit(RoutooChatStandardSetup, ChatModelUnitTests):
    """The standard unit suite, on the scripted pool and the planted predictor (see conftest.py)."""
