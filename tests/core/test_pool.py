"""The model pool: prices (one price book with the data sets) and capabilities from litellm or the spec,
predictor mapping, bad pools."""

from __future__ import annotations

import litellm
import pytest

from routoo.data.costs import dataset_price_book
from routoo.data.routellm import MODELS as ROUTELLM_MODELS
from routoo.errors import ConfigError, PriceNotFoundError, UnknownModelError
from routoo.model_info import forget_lookups
from routoo.pool import DEFAULT_OUTPUT_TOKENS, ModelPool, ModelSpec
from routoo.pricing import ModelPrice, PriceBook

PREDICTOR_MODELS = ["math-model", "poet-model", "big-model"]
STRONG = ROUTELLM_MODELS[1]


def test_prices_and_capabilities_come_from_litellm() -> None:
    pool = ModelPool(
        [{"name": "gpt-4o-mini", "like": "math-model"}, ModelSpec(name="gpt-3.5-turbo", like="big-model")],
        PREDICTOR_MODELS,
    )
    mini, turbo = pool.specs
    assert mini.input_cost_per_token == litellm.model_cost["gpt-4o-mini"]["input_cost_per_token"]
    assert mini.output_cost_per_token == litellm.model_cost["gpt-4o-mini"]["output_cost_per_token"]
    assert mini.max_input_tokens == litellm.get_model_info("gpt-4o-mini")["max_input_tokens"]
    assert (mini.supports_function_calling, mini.supports_vision, mini.supports_response_schema) == (
        True,
    ) * 3
    assert turbo.supports_vision is False
    assert pool.names == ["gpt-4o-mini", "gpt-3.5-turbo"]
    assert pool.predictor_columns == [0, 2]
    assert pool.priced_by_spec == [False, False]


def test_spec_fields_override_litellm() -> None:
    spec = ModelSpec(
        name="gpt-4o-mini",
        like="math-model",
        input_cost_per_token=1e-6,
        output_cost_per_token=2e-6,
        max_input_tokens=1000,
        supports_vision=False,
        latency_s=0.5,
    )
    (resolved,) = ModelPool([spec], PREDICTOR_MODELS).specs
    assert (resolved.input_cost_per_token, resolved.output_cost_per_token) == (1e-6, 2e-6)
    assert resolved.max_input_tokens == 1000
    assert resolved.supports_vision is False
    assert resolved.supports_function_calling is True  # not overridden: litellm's
    assert resolved.latency_s == 0.5


def test_a_model_litellm_does_not_price_needs_prices_in_its_spec() -> None:
    with pytest.raises(PriceNotFoundError, match="openai/my-finetune"):
        ModelPool([{"name": "openai/my-finetune", "like": "math-model"}], PREDICTOR_MODELS)
    pool = ModelPool(
        [
            {
                "name": "openai/my-finetune",
                "like": "math-model",
                "input_cost_per_token": 3e-7,
                "output_cost_per_token": 1e-6,
            }
        ],
        PREDICTOR_MODELS,
    )
    (spec,) = pool.specs
    assert spec.input_cost_per_token == 3e-7
    assert spec.max_input_tokens is None  # unknown: no context filter
    assert spec.supports_function_calling is False  # unknown: assume not
    assert pool.priced_by_spec == [True]


def test_expected_output_tokens_spec_then_predictor_then_default() -> None:
    pool = ModelPool(
        [
            {"name": "gpt-4o-mini", "like": "math-model", "expected_output_tokens": 99},
            {"name": "gpt-4o", "like": "poet-model"},
            {"name": "gpt-3.5-turbo", "like": "big-model"},
        ],
        PREDICTOR_MODELS,
        predictor_output_tokens={"math-model": 50.0, "poet-model": 80.0},
    )
    assert pool.expected_output_tokens().tolist() == [99.0, 80.0, DEFAULT_OUTPUT_TOKENS]


def test_a_model_the_predictor_does_not_know_lists_the_known_ones() -> None:
    with pytest.raises(UnknownModelError, match=r"gpt-4o-mini.*like=.*math-model.*poet-model.*big-model"):
        ModelPool(["gpt-4o-mini"], PREDICTOR_MODELS)
    with pytest.raises(UnknownModelError, match=r"scored like 'nobody'.*math-model"):
        ModelPool([{"name": "gpt-4o-mini", "like": "nobody"}], PREDICTOR_MODELS)


def test_a_pool_model_named_as_a_predictor_model_needs_no_like() -> None:
    pool = ModelPool(["gpt-4o-mini"], ["gpt-4o-mini"])
    assert pool.predictor_columns == [0]


@pytest.mark.parametrize(
    ("models", "message"),
    [
        ([], "non-empty"),
        ("gpt-4o-mini", "non-empty"),
        ([{"name": "gpt-4o-mini", "like": "math-model"}] * 2, "more than once"),
        ([{"name": "gpt-4o-mini", "like": "math-model", "input_cost_per_token": -1}], "input_cost_per_token"),
        ([{"name": "gpt-4o-mini", "like": "math-model", "latency_s": "fast"}], "latency_s"),
        ([{"name": "gpt-4o-mini", "like": "math-model", "price": 1}], "price"),
        ([{"name": ""}], "name"),
        ([42], "int"),
    ],
)
def test_bad_pools_say_what_is_wrong(models: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ModelPool(models, PREDICTOR_MODELS)


def test_index_names_the_pool_for_an_unknown_model() -> None:
    pool = ModelPool([{"name": "gpt-4o-mini", "like": "math-model"}], PREDICTOR_MODELS)
    assert pool.index("gpt-4o-mini") == 0
    with pytest.raises(UnknownModelError, match=r"gpt-5.*\['gpt-4o-mini'\]"):
        pool.index("gpt-5")


def test_pool_and_data_sets_price_models_through_one_price_book(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []
    lookup = PriceBook.price

    def recorded(book: PriceBook, model: str) -> ModelPrice:
        asked.append(model)
        return lookup(book, model)

    monkeypatch.setattr(PriceBook, "price", recorded)
    pool = ModelPool(
        [
            {"name": "gpt-4o-mini", "like": "math-model"},
            {"name": "gpt-4o", "like": "poet-model", "input_cost_per_token": 1e-6},
            {
                "name": "mine",
                "like": "big-model",
                "input_cost_per_token": 1e-7,
                "output_cost_per_token": 2e-7,
            },
        ],
        PREDICTOR_MODELS,
    )
    assert asked == ["gpt-4o-mini", "gpt-4o"]  # the fully priced spec needs no lookup
    mini, four_o, mine = pool.specs
    assert ModelPrice(mini.input_cost_per_token, mini.output_cost_per_token) == PriceBook().price(
        "gpt-4o-mini"
    )
    assert four_o.input_cost_per_token == 1e-6  # the spec's price overrides the book's
    assert four_o.output_cost_per_token == PriceBook().price("gpt-4o").output_cost_per_token
    assert (mine.input_cost_per_token, mine.output_cost_per_token) == (1e-7, 2e-7)


def test_a_pool_prices_with_a_data_sets_price_book() -> None:
    book = dataset_price_book("routellm")
    pool = ModelPool([{"name": STRONG, "like": "big-model"}], PREDICTOR_MODELS, prices=book)
    (spec,) = pool.specs
    assert ModelPrice(spec.input_cost_per_token, spec.output_cost_per_token) == book.price(STRONG)
    assert pool.priced_by_spec == [True]  # the book's own price, not litellm's
    with pytest.raises(PriceNotFoundError, match="gpt-4o-mini") as from_pool:
        ModelPool([{"name": "gpt-4o-mini", "like": "math-model"}], PREDICTOR_MODELS, prices=book)
    with pytest.raises(PriceNotFoundError) as from_book:
        book.price("gpt-4o-mini")
    assert str(from_pool.value) == str(from_book.value)


def test_a_model_litellm_lists_without_prices_is_not_free_in_the_pool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # litellm's name lookup reports such a model (image, audio) at $0; its map lists no price.
    name = "routoo-test/unpriced"
    monkeypatch.setitem(litellm.model_cost, name, {"litellm_provider": "openai", "mode": "image_generation"})
    forget_lookups()
    try:
        with pytest.raises(PriceNotFoundError, match=rf"{name}.*ModelSpec"):
            ModelPool([{"name": name, "like": "math-model"}], PREDICTOR_MODELS)
        with pytest.raises(PriceNotFoundError, match=name):
            PriceBook().price(name)
    finally:
        monkeypatch.undo()
        forget_lookups()
