import numpy as np
import pytest

from routoo.data import RoutingDataset, concat_datasets
from routoo.data.dataset import Battle
from routoo.errors import DataError


def test_union_joins_models_and_masks_absent_records(planted_dataset):
    first = planted_dataset(n=4).select_models(["math-model", "big-model"])
    second = RoutingDataset(
        name="other",
        prompts=["a", "b"],
        models=["big-model", "new-model"],
        quality=[[1.0, 0.0], [0.5, 1.0]],
        battles=[Battle(1, "big-model", "new-model", "model_b")],
    )
    union = concat_datasets([first, second])

    assert union.models == ["math-model", "big-model", "new-model"]
    assert len(union) == 6
    np.testing.assert_array_equal(union.quality[4:, 1], [1.0, 0.5])
    assert np.isnan(union.quality[:4, 2]).all() and np.isnan(union.quality[4:, 0]).all()
    assert union.cost is not None and np.isnan(union.cost[4:]).all()
    assert union.categories[0] == "planted/math" and union.categories[4] == "other"
    assert union.battles == [Battle(5, "big-model", "new-model", "model_b")]


def test_union_of_nothing_is_an_error():
    with pytest.raises(DataError, match="at least one"):
        concat_datasets([])
