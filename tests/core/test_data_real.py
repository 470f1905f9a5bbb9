"""Each named set loads from the real shared data with plausible counts and sane costs.

MMLU-Pro's first load joins 29 runs and counts ~300k answers' tokens (about a minute on two
cores); it is cached under ``$ROUTOO_CACHE_DIR``, which in the tests is the session's throwaway
cache (conftest.py), seeded with a copy of the user's cached sets, so later runs take seconds.
"""

from __future__ import annotations

import numpy as np
import pytest

from routoo.data import load_dataset, train_test_split
from routoo.data.costs import bundled_price_entries

pytestmark = pytest.mark.shared_data

# name: (prompts, models, records, categories)
EXPECTED = {
    "routellm-mmlu": (14_037, 2, 28_074, 57),  # 14,042 - 5 contaminated
    "routellm-gsm8k": (1_307, 2, 2_614, 0),  # 1,319 - 12 contaminated
    "routellm-mt-bench": (144, 2, 288, 8),  # (80 - 8 contaminated questions) x 2 turns
    "routerbench": (3_178, 11, 34_804, 3),  # 14 duplicated ARC rows are scored for 1 or 10 models
    "llmrouter": (6_108, 9, 54_972, 3),  # 5,608 train + 500 test; categories = 3 train clusters
    # the questions all 29 published runs answered, of 12,032; gpt-4o has all, DeepSeek-V2 10,225
    "mmlu-pro": (10_326, 31, 320_005, 14),
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_real_set_loads_with_plausible_counts(shared_data, name):
    dataset = load_dataset(name, data_dir=shared_data)
    summary = dataset.describe()
    assert (summary["prompts"], summary["models"], summary["records"], summary["categories"]) == EXPECTED[
        name
    ]
    recorded = dataset.mask
    assert np.isfinite(dataset.cost[recorded]).all() and (dataset.cost[recorded] >= 0).all()
    assert (dataset.mean_cost() > 0).all()
    assert np.isfinite(dataset.input_tokens).all() and (dataset.input_tokens > 0).all()
    # Answer lengths are recorded where the set keeps the answers, unknown (NaN) where it does not.
    answers_kept = name not in ("routellm-mmlu", "llmrouter")
    assert np.isfinite(dataset.output_tokens[recorded]).all() == answers_kept
    assert answers_kept or np.isnan(dataset.output_tokens).all()
    accuracy = np.nanmean(dataset.quality, axis=0)
    assert ((accuracy > 0.1) & (accuracy < 0.95)).all()
    train, test = train_test_split(dataset)
    assert len(train) + len(test) == len(dataset)


def test_routellm_strong_model_beats_weak_and_costs_more(shared_data):
    dataset = load_dataset("routellm-mmlu", data_dir=shared_data)
    weak, strong = np.nanmean(dataset.quality, axis=0)
    assert 0.6 < weak < strong < 0.9  # RouteLLM reports ~68% and ~81% on MMLU
    assert dataset.mean_cost()[1] > 10 * dataset.mean_cost()[0]


def test_every_llmrouter_model_has_a_bundled_price_entry(shared_data):
    dataset = load_dataset("llmrouter", data_dir=shared_data)
    assert set(dataset.models) == set(bundled_price_entries("llmrouter"))
