"""litellm, loaded for all of Routoo with its bundled model cost map and tokenizers.

Imported without ``LITELLM_LOCAL_MODEL_COST_MAP``, litellm fetches its price map from the
network, and tiktoken downloads an encoding unless ``TIKTOKEN_CACHE_DIR`` holds it. Routoo
sets such variables only while it loads litellm or an encoding and then takes them back,
so using Routoo neither reaches the network nor changes the process environment. Every
Routoo module takes litellm from here, so that this import comes first; a litellm the
caller imported earlier is used as it is.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path


@contextmanager
def scoped_environment(**variables: str) -> Iterator[None]:
    """Sets those of ``variables`` the caller has not set, for the ``with`` block only."""
    added = {name: value for name, value in variables.items() if name not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


with scoped_environment(LITELLM_LOCAL_MODEL_COST_MAP="True"):
    import litellm
    from litellm import CustomLLM, ModelResponse
    from litellm.types.utils import GenericStreamingChunk


def bundled_tokenizers() -> Path:
    """The folder of tiktoken encodings that litellm ships (cl100k_base and o200k_base among them)."""
    return Path(str(resources.files(litellm).joinpath("litellm_core_utils/tokenizers")))


__all__ = [
    "CustomLLM",
    "GenericStreamingChunk",
    "ModelResponse",
    "bundled_tokenizers",
    "litellm",
    "scoped_environment",
]
