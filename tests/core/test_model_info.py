"""What litellm says about a model, asked in one place: prices, limits, capabilities, unknown models."""

from __future__ import annotations

from collections.abc import Iterator

import litellm
import pytest

from routoo import model_info
from routoo.errors import ConfigError

UNPRICED = "routoo-test/unpriced-image-model"


@pytest.fixture
def unpriced_model(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A model litellm's map lists without prices (as it lists image models), gone after the test."""
    entry = {"litellm_provider": "openai", "mode": "image_generation", "max_input_tokens": 77}
    monkeypatch.setitem(litellm.model_cost, UNPRICED, entry)
    model_info.forget_lookups()
    yield UNPRICED
    monkeypatch.undo()
    model_info.forget_lookups()


def test_a_known_model_has_its_prices_limits_and_capabilities() -> None:
    entry = litellm.model_cost["gpt-4o-mini"]
    assert model_info.listed_prices("gpt-4o-mini") == (
        entry["input_cost_per_token"],
        entry["output_cost_per_token"],
    )
    assert model_info.max_input_tokens("gpt-4o-mini") == entry["max_input_tokens"]
    assert model_info.max_output_tokens("gpt-4o-mini") == entry["max_output_tokens"]
    assert all(model_info.supports("gpt-4o-mini", capability) for capability in model_info.CAPABILITIES)
    assert not model_info.supports("gpt-3.5-turbo", "supports_vision")


def test_an_unknown_model_has_no_entry_and_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert model_info.model_entry("my-secret-model") == {}
    assert model_info.listed_prices("my-secret-model") is None
    assert model_info.max_input_tokens("my-secret-model") is None
    assert model_info.max_output_tokens("my-secret-model") is None
    assert not any(
        model_info.supports("my-secret-model", capability) for capability in model_info.CAPABILITIES
    )
    assert capsys.readouterr().out == ""


def test_a_model_listed_without_prices_is_not_free(unpriced_model: str) -> None:
    assert model_info.model_entry(unpriced_model)["input_cost_per_token"] == 0  # litellm's name lookup
    assert model_info.listed_prices(unpriced_model) is None
    assert model_info.max_input_tokens(unpriced_model) == 77


def test_a_key_only_the_map_resolves_is_priced() -> None:
    # litellm's name lookup fails on some keys of its own map; the price comes from the key.
    key = next(
        key
        for key, entry in litellm.model_cost.items()
        if entry.get("input_cost_per_token")
        and entry.get("output_cost_per_token")
        and not model_info.model_entry(key)
    )
    entry = litellm.model_cost[key]
    assert model_info.listed_prices(key) == (entry["input_cost_per_token"], entry["output_cost_per_token"])


def test_an_unknown_capability_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"unknown capability 'supports_telepathy'.*supports_vision"):
        model_info.supports("gpt-4o", "supports_telepathy")  # type: ignore[arg-type]
