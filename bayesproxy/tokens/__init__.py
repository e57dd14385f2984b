"""Token-level proxy metrics from next-token distributions over expert solutions.

Teacher-force a candidate model on expert-written solutions, then summarise its next-token
distribution at the expert's tokens: cross-entropy, top-k accuracy, normalised entropy,
expert-token rank, margin and confidence when wrong, each under several token weightings.
Instance score = weighted mean over the last tokens; task score = mean over instances.
The results are rows of a benchmark table (task = metric name), ready to serve as proxies.

NumPy is all the core needs; PyTorch tensors are scored on their own device. The Hugging
Face adapter (:mod:`bayesproxy.tokens.hf`) needs the ``tokens`` extra (torch, transformers).

Examples
--------
>>> import numpy as np
>>> from bayesproxy.tokens import task_scores, token_statistics
>>> rng = np.random.default_rng(1)
>>> ids = rng.integers(0, 30, size=(3, 8))
>>> stats = token_statistics(rng.normal(size=(3, 8, 30)), ids)
>>> sorted(stats)[:3]
['cross_entropy', 'entropy', 'margin']
>>> frame = task_scores(stats, expert_ids=ids)
>>> len(frame) == 10 * 7
True
"""

from bayesproxy.tokens.aggregate import (
    ENTROPY_FLOOR,
    WEIGHTINGS,
    instance_scores,
    metric_name,
    task_scores,
    token_frequencies,
    token_weights,
)
from bayesproxy.tokens.errors import PairsFileError, TokenInputError
from bayesproxy.tokens.statistics import (
    DEFAULT_CHUNK_BYTES,
    DEVICE_CHUNK_BYTES,
    HIGHER_IS_BETTER,
    STATISTICS,
    TOP_K,
    token_statistics,
)

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "DEVICE_CHUNK_BYTES",
    "ENTROPY_FLOOR",
    "HIGHER_IS_BETTER",
    "STATISTICS",
    "TOP_K",
    "WEIGHTINGS",
    "PairsFileError",
    "TokenInputError",
    "instance_scores",
    "metric_name",
    "task_scores",
    "token_frequencies",
    "token_statistics",
    "token_weights",
]
