"""Per-token prices: overrides, litellm's map, unknown models, and the bundled data-set prices."""

from __future__ import annotations

import json

import litellm
import numpy as np
import pytest

from routoo.data import mmlu_pro, routellm
from routoo.data.costs import MODEL_PRICES_FILE, bundled_price_entries, dataset_price_book
from routoo.errors import ConfigError, PriceNotFoundError
from routoo.pricing import ModelPrice, PriceBook


def litellm_prices(key: str) -> tuple[float, float]:
    info = litellm.model_cost[key]
    return info["input_cost_per_token"], info["output_cost_per_token"]


def test_price_from_litellm_map():
    price = PriceBook().price("gpt-4o")
    assert (price.input_cost_per_token, price.output_cost_per_token) == litellm_prices("gpt-4o")


def test_provider_prefixed_name_is_resolved_by_litellm():
    assert PriceBook().price("openai/gpt-4o") == PriceBook().price("gpt-4o")


def test_unknown_model_raises_naming_it():
    with pytest.raises(PriceNotFoundError, match="my-secret-model") as caught:
        PriceBook().price("my-secret-model")
    assert isinstance(caught.value, KeyError)  # PriceNotFoundError is an UnknownModelError
    assert "my-secret-model" not in PriceBook()
    with pytest.raises(PriceNotFoundError, match="my-secret-model"):
        PriceBook().cost("my-secret-model", 10, 10)


def test_overrides_win_over_litellm():
    book = PriceBook(
        {
            "gpt-4o": ModelPrice(1e-6, 2e-6),
            "my-model": {"input_cost_per_token": 0.0, "output_cost_per_token": 3e-6},
        }
    )
    assert book.price("gpt-4o") == ModelPrice(1e-6, 2e-6)
    assert book.price("my-model") == ModelPrice(0.0, 3e-6)
    assert "my-model" in book


def test_override_can_price_a_model_as_a_litellm_key():
    book = PriceBook({"my-finetune": {"litellm_model": "gpt-4o-mini", "source": "same base model"}})
    assert book.price("my-finetune") == PriceBook().price("gpt-4o-mini")
    with pytest.raises(PriceNotFoundError, match=r"'broken'.*'no-such-key'"):
        PriceBook({"broken": {"litellm_model": "no-such-key"}}).price("broken")


def test_overrides_from_json_file(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"local-llm": {"input_cost_per_token": 1e-7, "output_cost_per_token": 2e-7}}))
    assert PriceBook(path).price("local-llm") == ModelPrice(1e-7, 2e-7)
    assert PriceBook(str(path)).price("local-llm") == ModelPrice(1e-7, 2e-7)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"m": {"input_cost_per_token": 1e-6}}', "missing \\['output_cost_per_token'\\]"),
        ('{"m": {"input_cost_per_token": -1, "output_cost_per_token": 0}}', "'m'.*negative"),
        ('{"m": {"input_cost": 1, "output_cost_per_token": 0}}', "unknown fields \\['input_cost'\\]"),
        (
            '{"m": {"litellm_model": "gpt-4o", "input_cost_per_token": 1, "output_cost_per_token": 1}}',
            "not both",
        ),
        ('{"m": 0.5}', "expected a ModelPrice or a dict"),
    ],
)
def test_bad_price_file_is_a_config_error(tmp_path, content, message):
    path = tmp_path / "prices.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        PriceBook(path)


def test_missing_price_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        PriceBook(tmp_path / "nope.json")


def test_model_price_validates():
    with pytest.raises(ConfigError, match="finite"):
        ModelPrice(float("nan"), 0.0)
    with pytest.raises(ConfigError, match="negative"):
        ModelPrice(0.0, -1e-6)


def test_cost_is_vectorised():
    book = PriceBook({"m": ModelPrice(1e-6, 4e-6)})
    assert book.cost("m", 1000, 500) == pytest.approx(1000 * 1e-6 + 500 * 4e-6)
    costs = book.cost("m", np.array([0, 10, 100]), np.array([1, 2, 3]))
    np.testing.assert_allclose(costs, [4e-6, 10e-6 + 8e-6, 100e-6 + 12e-6])


def test_with_overrides_layers_books():
    base = PriceBook({"a": ModelPrice(1.0, 1.0), "b": ModelPrice(2.0, 2.0)})
    layered = base.with_overrides({"b": ModelPrice(3.0, 3.0)})
    assert layered.price("a") == ModelPrice(1.0, 1.0)
    assert layered.price("b") == ModelPrice(3.0, 3.0)
    assert base.price("b") == ModelPrice(2.0, 2.0)  # the original is unchanged
    assert base.with_overrides(None).overrides == base.overrides


# ------------------------------------------------------------------ bundled data-set prices
def test_every_bundled_price_is_a_number_with_its_source():
    content = json.loads(MODEL_PRICES_FILE.read_text())
    for family in ("routellm", "llmrouter", "mmlu-pro"):
        for model, entry in content[family].items():
            assert entry.get("source"), f"{family}/{model} does not state its source"
            # A key of litellm's map would move with every litellm release.
            assert "litellm_model" not in entry, f"{family}/{model} is priced by a litellm key"
            if "prices_file" not in entry:
                price = ModelPrice(entry["input_cost_per_token"], entry["output_cost_per_token"])
                assert price.output_cost_per_token > 0


def test_dataset_prices_never_fall_back_to_litellm():
    book = dataset_price_book("routellm")
    assert "gpt-4o" in PriceBook()
    with pytest.raises(PriceNotFoundError, match="gpt-4o"):
        book.price("gpt-4o")
    assert not book.with_overrides({"x": ModelPrice(1.0, 1.0)}).litellm_fallback


def test_bundled_prices_cover_every_model_without_recorded_costs():
    assert set(bundled_price_entries("routellm")) == set(routellm.MODELS)
    assert set(bundled_price_entries("mmlu-pro")) == set(mmlu_pro.model_names())
    assert len(bundled_price_entries("llmrouter")) == 9
    book = dataset_price_book("mmlu-pro")
    for model in mmlu_pro.model_names():
        assert book.price(model).output_cost_per_token > 0


def test_user_prices_override_bundled_ones():
    book = dataset_price_book("routellm", prices={"gpt-4-1106-preview": ModelPrice(0.0, 0.0)})
    assert book.price("gpt-4-1106-preview") == ModelPrice(0.0, 0.0)
    mixtral = bundled_price_entries("routellm")["mistralai/Mixtral-8x7B-Instruct-v0.1"]
    assert book.price("mistralai/Mixtral-8x7B-Instruct-v0.1") == ModelPrice(
        mixtral["input_cost_per_token"], mixtral["output_cost_per_token"]
    )
