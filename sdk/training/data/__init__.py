"""Torch ``Dataset`` wrappers over the numpy datasets of :mod:`runtime.datasets` (``torch_dataset``); samples become
model input through :mod:`runtime.preprocess`, as in serving.

The torch-free readers, label sets and the spec parser moved to :mod:`runtime.datasets`; their names are
re-exported here so ``from sdk.training.data import open_dataset`` keeps working.
"""

from __future__ import annotations

from runtime.datasets import *  # noqa: F401,F403 - re-exported for compatibility
from runtime.datasets import __all__  # noqa: F401
