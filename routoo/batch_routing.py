"""Routing a large file of prompts without calling any model: here, or on a Ray cluster.

Each prompt gets ``Router.route``'s decision, the very code path a live call takes, as one
JSON-ready dict with the prompt's ``index`` in the file. Locally the decisions come in file
order. With Ray (the ``routoo[ray]`` extra), Ray Data splits the prompts into batches for
``workers`` workers, each holding a Router built by ``router_factory``, and the decisions come
back as batches finish (sort by ``index`` for file order): the driver never holds them all.
A prompt a router refuses (it fits no model, a budget) gets ``{"index", "error"}``, not a stop.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from routoo.errors import ConfigError, RoutooError
from routoo.prompts import Prompt

if TYPE_CHECKING:
    import numpy as np

    from routoo.router import Router


def route_batch(router: Router, prompts: Sequence[Prompt], start: int = 0) -> Iterator[dict[str, Any]]:
    """The decision for every prompt, in order; ``start`` is the first prompt's index."""
    for offset, prompt in enumerate(prompts):
        try:
            decision = router.route(prompt)
        except RoutooError as error:
            yield {"index": start + offset, "error": f"{type(error).__name__}: {error}"}
            continue
        yield {"index": start + offset, **decision.to_dict()}


def route_batch_on_ray(
    router_factory: Callable[[], Router],
    prompts: Sequence[Prompt],
    *,
    workers: int = 2,
    batch_size: int = 256,
    address: str | None = None,
) -> Iterator[dict[str, Any]]:
    """``route_batch`` on a Ray cluster (``address``; None: the one connected, else a local one)."""
    from routoo.labelling.ray_executor import connect

    for name, value in (("workers", workers), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, not {value!r}")
    ray = connect(address)
    rows = [{"index": index, "prompt": json.dumps(prompt)} for index, prompt in enumerate(prompts)]
    decided = ray.data.from_items(rows).map_batches(
        _RoutingWorker, fn_constructor_args=(router_factory,), batch_size=batch_size, concurrency=workers
    )
    for row in decided.iter_rows():
        yield json.loads(row["decision"])


class _RoutingWorker:
    """One Ray Data worker: a Router deciding each batch of prompts it is given."""

    def __init__(self, router_factory: Callable[[], Router]) -> None:
        self.router = router_factory()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[str]]:
        indices = [int(index) for index in batch["index"]]
        prompts = [json.loads(prompt) for prompt in batch["prompt"]]
        decisions = []
        for index, prompt in zip(indices, prompts, strict=True):
            decisions += [json.dumps(decision) for decision in route_batch(self.router, [prompt], index)]
        return {"decision": decisions}
