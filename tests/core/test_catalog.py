"""The model catalog: one identity per model across the data sets and what users write, the loaders
naming their columns by it, MMLU-Pro's API runs, `routoo models`, and the pool resolving through it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import saved_predictor

from routoo.catalog import CATALOG_FILE, CatalogEntry, ModelCatalog, default_catalog, litellm_providers
from routoo.cli import main
from routoo.data import concat_datasets, load_dataset, mmlu_pro, routellm, routerbench, train_test_split
from routoo.data.registry import DATASETS
from routoo.errors import ConfigError, UnknownModelError
from routoo.evaluate import evaluate
from routoo.pool import ModelPool
from routoo.pricing import PriceBook

CATALOG = default_catalog()
# LLMRouter's model names (its data set names them in each record's scores; no constant holds them).
LLMROUTER_MODELS = (
    "qwen2.5-7b-instruct", "llama-3.1-8b-instruct", "gemma-2-9b-it", "mistral-7b-instruct-v0.3",
    "codegemma-7b", "llama3-chatqa-1.5-8b", "llama3-chatqa-1.5-70b", "llama-3.1-nemotron-51b-instruct",
    "llama-3.3-nemotron-super-49b-v1",
)  # fmt: skip
SOURCE_NAMES = {
    "routellm-mmlu": routellm.MODELS,
    "routellm-gsm8k": routellm.MODELS,
    "routellm-mt-bench": routellm.MODELS,
    "routerbench": routerbench.MODELS,
    "llmrouter": LLMROUTER_MODELS,
    "mmlu-pro": (*mmlu_pro.MODELS, *mmlu_pro.API_RUNS.values()),
}
MIXTRAL = "mistralai/Mixtral-8x7B-Instruct-v0.1"
LLAMA_31_8B = "meta-llama/Llama-3.1-8B-Instruct"


def identity(name: str, base_model: str | None = None) -> str | None:
    entry = CATALOG.resolve(name, base_model=base_model)
    return None if entry is None else entry.name


# ------------------------------------------------------------------ the bundled catalog
def test_no_spelling_names_two_models() -> None:
    owners: dict[str, str] = {}
    for entry in CATALOG:
        for spelling in entry.names:
            assert owners.setdefault(spelling.casefold(), entry.name) == entry.name, spelling
    # Nor once a provider prefix litellm strips is dropped: an alias must not shadow another model.
    for spelling, owner in owners.items():
        prefix, _, rest = spelling.partition("/")
        if rest and prefix in litellm_providers() and rest in owners:
            assert owners[rest] == owner, spelling


def test_every_model_of_every_set_has_one_entry_and_the_entry_lists_the_set() -> None:
    for dataset, names in SOURCE_NAMES.items():
        entries = {identity(name) for name in names}
        assert None not in entries, [name for name in names if identity(name) is None]
        assert len(entries) == len(set(names)), f"{dataset} names one model twice"
        listed = {entry.name for entry in CATALOG if dataset in entry.datasets}
        assert listed == entries, dataset
    assert {dataset for entry in CATALOG for dataset in entry.datasets} == set(DATASETS)


def test_the_same_model_is_one_identity_across_sets() -> None:
    assert identity("mistralai/Mixtral-8x7B-Instruct-v0.1") == MIXTRAL  # RouteLLM
    assert identity("mistralai/mixtral-8x7b-chat") == MIXTRAL  # RouterBench
    assert identity("Mixtral-8x7B-Instruct-v0.1") == MIXTRAL  # MMLU-Pro
    assert identity("llama-3.1-8b-instruct") == LLAMA_31_8B  # LLMRouter
    assert identity("Meta-Llama-3_1-8B-Instruct") == LLAMA_31_8B  # MMLU-Pro
    assert identity("gpt-4-1106-preview") == "gpt-4-1106-preview"  # RouteLLM and RouterBench
    assert identity("gpt-4o-2024-05-13") == identity("gpt-4o") == "gpt-4o"  # MMLU-Pro's API run


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Mixtral-8x7B-v0.1", "Mixtral-8x7B-Instruct-v0.1"),  # base and instruct
        ("Meta-Llama-3_1-8B", "Meta-Llama-3_1-8B-Instruct"),
        ("Llama-2-70b-hf", "meta/llama-2-70b-chat"),
        ("Yi-34B", "zero-one-ai/Yi-34B-Chat"),
        ("mistralai/mistral-7b-chat", "Mistral-7B-Instruct-v0.1"),  # RouterBench never says which version
        ("mistralai/mistral-7b-chat", "Mistral-7B-Instruct-v0.2"),
        ("Mistral-7B-Instruct-v0.2", "mistral-7b-instruct-v0.3"),
        ("DeepSeek-V2-Chat", "deepseek-chat"),  # deepseek-chat now names a later model
        ("DeepSeek-V2-Chat", "deepseek-v3"),
        ("claude-v2", "claude-3-5-sonnet"),
        ("gemma-7b", "codegemma-7b"),
    ],
)
def test_models_that_differ_are_not_linked(one: str, other: str) -> None:
    assert identity(one) is not None and identity(other) is not None
    assert identity(one) != identity(other)


def test_names_the_catalog_does_not_link() -> None:
    assert identity("gpt-4o-2024-08-06") is None  # another gpt-4o checkpoint than the recorded one
    assert identity("claude-2.1") is None  # RouterBench's claude-v2 may be 2.0
    assert identity("my-finetune") is None
    assert CATALOG.canonical_name("my-finetune") == "my-finetune"
    assert CATALOG.canonical_name("Mixtral-8x7B-Instruct-v0.1") == MIXTRAL


def test_todays_models_are_in_the_catalog() -> None:
    for name in [
        "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "o3-mini", "claude-sonnet-4-5",
        "claude-3-5-haiku", "claude-3-5-sonnet", "gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.0-flash",
        "llama-3.1-70b-instruct", "llama-3.3-70b-instruct", "llama-3.1-405b-instruct", "deepseek-v3",
        "deepseek-chat", "qwen2.5-72b-instruct", "mistral-large", "mistral-small",
    ]:  # fmt: skip
        assert identity(name) is not None, name


def test_every_litellm_name_is_a_priced_key_of_litellms_map() -> None:
    import litellm

    book = PriceBook()
    for entry in CATALOG:
        if entry.litellm_name is not None:
            assert entry.litellm_name in litellm.model_cost, entry.name
            assert entry.litellm_name in book, entry.name


def test_entries_hold_typed_frozen_facts() -> None:
    gpt_4o = CATALOG.resolve("gpt-4o")
    assert gpt_4o is not None and gpt_4o.release_date is not None
    assert gpt_4o.release_date.isoformat() == "2024-05-13" and gpt_4o.open_weights is False
    mixtral = CATALOG.resolve(MIXTRAL)
    assert mixtral is not None and mixtral.parameters_b == 46.7 and mixtral.family == "mixtral"
    with pytest.raises(Exception, match="frozen"):
        mixtral.name = "other"  # type: ignore[misc]
    assert default_catalog() is CATALOG and len(CATALOG) == len(list(CATALOG))


# ------------------------------------------------------------------ resolving what users write
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("gpt-4o", "gpt-4o"),
        ("openai/gpt-4o", "gpt-4o"),
        ("GPT-4o", "gpt-4o"),
        ("openrouter/openai/gpt-4o", "gpt-4o"),
        ("anthropic/claude-sonnet-4-5", "claude-sonnet-4-5"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("gemini/gemini-2.5-flash", "gemini-2.5-flash"),
        ("together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo", "meta-llama/Llama-3.3-70B-Instruct"),
        ("hosted_vllm/meta-llama/Llama-3.1-8B-Instruct", LLAMA_31_8B),
        ("deepseek/deepseek-chat", "deepseek-chat"),
        ("foo/gpt-4o", None),  # not a provider litellm strips
        ("azure/my-deployment", None),
    ],
)
def test_resolving_what_users_write(name: str, expected: str | None) -> None:
    assert identity(name) == expected


def test_an_azure_deployment_resolves_by_its_base_model() -> None:
    assert identity("azure/my-deployment", base_model="azure/gpt-4o") == "gpt-4o"
    assert identity("azure/gpt-4o", base_model="azure/gpt-4o-mini") == "gpt-4o-mini"  # the base model wins
    assert identity("azure/gpt-4o", base_model="azure/unknown") == "gpt-4o"


# ------------------------------------------------------------------ malformed catalogs
def write_catalog(path: Path, models: list[dict[str, object]], **extra: object) -> Path:
    path.write_text(json.dumps({"models": models, **extra}))
    return path


def entry(name: str, **fields: object) -> dict[str, object]:
    return {"name": name, "provider": "acme", **fields}


@pytest.mark.parametrize(
    ("models", "message"),
    [
        (
            [entry("a", aliases=["shared"]), entry("b", aliases=["Shared"])],
            r"catalog entry 'b': 'Shared' already names entry 'a'",
        ),
        ([entry("a"), entry("A")], r"catalog entry 'A': 'A' already names entry 'a'"),
        (
            [entry("a", release_date="2024-13-01")],
            r"model #0: catalog entry 'a': release_date.*calendar date",
        ),
        ([entry("a", release_date="May 2024")], r"catalog entry 'a': release_date.*YYYY-MM-DD"),
        ([entry("a", release_date=20240513)], r"catalog entry 'a': release_date.*YYYY-MM-DD"),
        ([entry("a", price=1.0)], r"catalog entry 'a': price.*[Ee]xtra"),
        ([entry("a", parameters_b="7")], r"catalog entry 'a': parameters_b"),
        ([entry("a", open_weights="yes")], r"catalog entry 'a': open_weights"),
        ([{"name": "a"}], r"catalog entry 'a': provider"),
        (["a"], r"model #0 is not an object"),
    ],
)
def test_a_malformed_catalog_is_an_error_naming_the_entry(
    tmp_path: Path, models: list[dict[str, object]], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        ModelCatalog.from_file(write_catalog(tmp_path / "catalog.json", models))


def test_a_malformed_catalog_file_is_an_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown keys \['version'\]"):
        ModelCatalog.from_file(write_catalog(tmp_path / "catalog.json", [], version=2))
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ConfigError, match=r"broken\.json is not valid JSON"):
        ModelCatalog.from_file(tmp_path / "broken.json")
    with pytest.raises(ConfigError, match="does not exist"):
        ModelCatalog.from_file(tmp_path / "absent.json")
    with pytest.raises(ConfigError, match="'models' list"):
        ModelCatalog.from_file(write_catalog(tmp_path / "catalog.json", {}))  # type: ignore[arg-type]


def test_the_bundled_file_is_the_default_catalog() -> None:
    names = [entry["name"] for entry in json.loads(CATALOG_FILE.read_text())["models"]]
    assert [entry.name for entry in CATALOG] == names
    with pytest.raises(ConfigError, match="catalog entry 'x': aliases"):
        CatalogEntry(name="x", provider="acme", aliases=[""])


# ------------------------------------------------------------------ the model pool
def test_the_pool_finds_the_predictors_column_by_catalog_identity() -> None:
    predictor_models = ["gpt-4o", MIXTRAL]
    azure = {"name": "azure/my-deployment", "litellm_params": {"base_model": "azure/gpt-4o"}}
    pool = ModelPool(["openai/gpt-4o", "gpt-4o-2024-05-13", azure, "open-mixtral-8x7b"], predictor_models)
    assert pool.predictor_columns == [0, 0, 0, 1]
    assert [entry.name if entry else None for entry in pool.catalog_entries] == ["gpt-4o"] * 3 + [MIXTRAL]
    book = PriceBook()
    openai, snapshot, deployment, _ = pool.specs
    assert snapshot.input_cost_per_token == book.price("gpt-4o-2024-05-13").input_cost_per_token == 5e-6
    assert openai.input_cost_per_token == book.price("gpt-4o").input_cost_per_token
    # The deployment is priced as its base model, and takes its limits from the catalog's litellm name.
    assert deployment.output_cost_per_token == book.price("azure/gpt-4o").output_cost_per_token
    assert (deployment.max_input_tokens, deployment.max_output_tokens) == (
        openai.max_input_tokens,
        openai.max_output_tokens,
    )
    assert pool.priced_by_spec == [False] * 4


def test_a_name_litellm_does_not_price_takes_its_catalog_entrys_litellm_price() -> None:
    name = "hosted_vllm/meta-llama/Llama-3.1-8B-Instruct"
    assert name not in PriceBook()
    (spec,) = ModelPool([name], [LLAMA_31_8B]).specs
    entry = CATALOG.resolve(name)
    assert entry is not None and entry.litellm_name is not None
    listed = PriceBook().price(entry.litellm_name)
    assert (spec.input_cost_per_token, spec.output_cost_per_token) == (
        listed.input_cost_per_token,
        listed.output_cost_per_token,
    )
    assert spec.max_input_tokens is not None


def test_a_predictor_trained_on_the_old_names_still_resolves_them(tmp_path: Path) -> None:
    old_names = ["mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview", "mistralai/mixtral-8x7b-chat",
                 "Mixtral-8x7B-Instruct-v0.1", "llama-3.1-8b-instruct"]  # fmt: skip
    pool = ModelPool(
        ["mistralai/mixtral-8x7b-chat", "openai/gpt-4-1106-preview", "Meta-Llama-3_1-8B-Instruct"], old_names
    )
    assert pool.predictor_columns == [2, 1, 4]
    # A name of a model the predictor knows under several names is ambiguous: like= picks one.
    with pytest.raises(UnknownModelError, match=r"several names.*mixtral-8x7b-chat.*like="):
        ModelPool(["open-mixtral-8x7b"], old_names)
    pool = ModelPool([{"name": "open-mixtral-8x7b", "like": "Mixtral-8x7B-Instruct-v0.1"}], old_names)
    assert pool.predictor_columns == [3]


def test_like_resolves_through_the_catalog_and_unknown_models_still_fail() -> None:
    pool = ModelPool([{"name": "gpt-4.1", "like": "openai/gpt-4o"}], ["gpt-4o"])
    assert pool.predictor_columns == [0] and pool.catalog_entries[0] is CATALOG.resolve("gpt-4.1")
    with pytest.raises(UnknownModelError, match=r"does not know pool model 'gpt-4.1'.*like="):
        ModelPool(["gpt-4.1"], ["gpt-4o"])
    custom = ModelCatalog([CatalogEntry(name="house-model", provider="us", aliases=("house",))])
    pool = ModelPool(
        [{"name": "house", "input_cost_per_token": 1e-7, "output_cost_per_token": 1e-7}],
        ["house-model"],
        catalog=custom,
    )
    assert pool.predictor_columns == [0] and pool.catalog_entries[0] is next(iter(custom))


# ------------------------------------------------------------------ `routoo models`
def test_routoo_models_json_lists_names_aliases_facts_and_prices(capsys) -> None:
    assert main(["models", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert list(rows) == [entry.name for entry in CATALOG]
    mixtral = rows[MIXTRAL]
    assert {"mistralai/mixtral-8x7b-chat", "Mixtral-8x7B-Instruct-v0.1"} <= set(mixtral["aliases"])
    assert mixtral["datasets"] == [
        "routellm-mmlu",
        "routellm-gsm8k",
        "routellm-mt-bench",
        "routerbench",
        "mmlu-pro",
    ]
    gpt_4o = rows["gpt-4o"]
    assert gpt_4o["litellm_name"] == "gpt-4o" and gpt_4o["release_date"] == "2024-05-13"
    price = PriceBook().price("gpt-4o")
    assert gpt_4o["input_usd_per_million_tokens"] == pytest.approx(price.input_cost_per_token * 1e6)
    assert gpt_4o["output_usd_per_million_tokens"] == pytest.approx(price.output_cost_per_token * 1e6)
    assert rows["claude-2"]["input_usd_per_million_tokens"] is None  # no litellm name: no price
    assert "predictor_names" not in gpt_4o


def test_routoo_models_says_which_models_a_predictor_knows(capsys) -> None:
    assert main(["models", "--predictor", "default", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["gpt-4-1106-preview"]["predictor_names"] == ["gpt-4-1106-preview"]
    assert rows[MIXTRAL]["predictor_names"] == [MIXTRAL]  # one column, whichever set scored it
    assert rows["gpt-4o"]["predictor_names"] == ["gpt-4o"]
    assert rows["gpt-4.1"]["predictor_names"] == []
    assert main(["models", "--predictor", "default"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["name", "provider", "family"] and "predictor" in table[0]
    assert any(line.startswith("gpt-4o ") for line in table)


def test_routoo_models_with_a_saved_predictor(planted_dataset, tmp_path_factory, capsys) -> None:
    directory = saved_predictor(planted_dataset, tmp_path_factory)
    assert main(["models", "--predictor", str(directory), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert all(row["predictor_names"] == [] for row in rows)  # it knows only the planted models


# ------------------------------------------------------------------ the shared data
@pytest.mark.shared_data
def test_every_set_names_its_models_by_the_catalog(shared_data) -> None:
    for name in DATASETS:
        dataset = load_dataset(name, data_dir=shared_data)
        assert {identity(model) for model in dataset.models} == set(dataset.models), name
        assert set(dataset.models) == {entry.name for entry in CATALOG if name in entry.datasets}, name


@pytest.mark.shared_data
def test_the_union_of_all_sets_has_one_column_per_model(shared_data) -> None:
    sets = {name: train_test_split(load_dataset(name, data_dir=shared_data))[0] for name in DATASETS}
    union = concat_datasets(list(sets.values()))
    assert len(union.models) == 49  # 50 per-set names before the catalog, less 3 joined, plus 2 API runs
    sources = np.repeat(list(sets), [len(dataset) for dataset in sets.values()])
    for model, holders in {
        MIXTRAL: {"routellm-mmlu", "routellm-gsm8k", "routellm-mt-bench", "routerbench", "mmlu-pro"},
        "gpt-4-1106-preview": {"routellm-mmlu", "routellm-gsm8k", "routellm-mt-bench", "routerbench"},
        LLAMA_31_8B: {"llmrouter", "mmlu-pro"},
    }.items():
        recorded = union.mask[:, union.models.index(model)]
        assert set(sources[recorded]) == holders, model


@pytest.mark.shared_data
def test_mmlu_pro_holds_the_api_runs_with_missing_records_masked(shared_data) -> None:
    dataset = load_dataset("mmlu-pro", data_dir=shared_data)
    gpt_4o, deepseek = dataset.model_index("gpt-4o"), dataset.model_index("deepseek-ai/DeepSeek-V2-Chat")
    assert dataset.mask[:, gpt_4o].all()  # gpt-4o answered all 12,032 questions
    assert (~dataset.mask[:, deepseek]).sum() == 101  # kept questions DeepSeek's run lacks: NaN, not dropped
    assert np.nanmean(dataset.quality[:, gpt_4o]) > np.nanmean(dataset.quality[:, deepseek]) > 0.5
    assert (
        np.isnan(dataset.cost[~dataset.mask]).all() and np.isnan(dataset.output_tokens[~dataset.mask]).all()
    )
    # $5 / $15 per million tokens: the 2024-05-13 snapshot's list price.
    row = int(np.argmax(dataset.mask[:, deepseek]))
    expected = dataset.input_tokens[row] * 5e-6 + dataset.output_tokens[row, gpt_4o] * 15e-6
    assert dataset.cost[row, gpt_4o] == pytest.approx(expected)
    # Splits and the evaluator cope with the masked records: incomplete prompts are left out.
    train, test = train_test_split(dataset)
    predicted = np.tile(np.nanmean(train.quality, axis=0), (len(test), 1))
    report = evaluate(test, {"means": predicted}, cost_estimate=train.mean_cost())
    assert report.n_dropped == int((~test.mask).any(axis=1).sum()) > 0
    assert report.n_prompts + report.n_dropped == len(test)


def test_family_members_are_found_by_any_spelling() -> None:
    catalog = default_catalog()
    among = ["gpt-4o", "gpt-4-1106-preview", "openai/gpt-4o-mini", "my-own-model"]
    assert catalog.family_members("gpt-4o-mini", among) == ["gpt-4o", "openai/gpt-4o-mini"]
    assert catalog.family_members("my-own-model", among) == []
