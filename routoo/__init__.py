"""Routoo: learned, cost-aware LLM routing."""

import os

# Importing litellm must never reach for the network: use its bundled price map.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

__version__ = "0.1.0"
