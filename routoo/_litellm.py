"""litellm, loaded for all of Routoo with its bundled model cost map.

Imported without ``LITELLM_LOCAL_MODEL_COST_MAP``, litellm fetches its price map from the
network. Routoo sets that variable only while it loads litellm and then takes it back, so
loading Routoo neither reaches the network nor changes the process environment. Every
Routoo module takes litellm from here, so that this import comes first; a litellm the
caller imported earlier is used as it is.
"""

from __future__ import annotations

from routoo._environment import scoped_environment

with scoped_environment(LITELLM_LOCAL_MODEL_COST_MAP="True"):
    import litellm
    from litellm import CustomLLM, ModelResponse
    from litellm.types.utils import GenericStreamingChunk


__all__ = [
    "CustomLLM",
    "GenericStreamingChunk",
    "ModelResponse",
    "litellm",
]
