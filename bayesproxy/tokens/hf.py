"""Hugging Face ``transformers`` adapter: token metrics of a causal LM as benchmark rows.

Teacher-force the model on ``prompt + solution`` in batches, score the solution tokens with
:func:`~bayesproxy.tokens.token_statistics` on the model's device, keep the last ``last_n``
per instance, and emit one benchmark-table row per token metric (``model, step, task,
score, stderr, ...``). Needs the ``tokens`` extra (torch, transformers); nothing is fetched
from the network here: the caller loads the model and tokenizer.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayesproxy.tokens.aggregate import WEIGHTINGS, task_scores
from bayesproxy.tokens.errors import PairsFileError, TokenInputError
from bayesproxy.tokens.statistics import STATISTICS, token_statistics

__all__ = ["ExpertPair", "ScoredCorpus", "read_pairs", "score_pairs", "token_metric_rows"]


@dataclass(frozen=True)
class ExpertPair:
    """One instance: a prompt and the expert-written solution that follows it."""

    prompt: str
    solution: str


@dataclass(frozen=True)
class ScoredCorpus:
    """Per-token statistics of a corpus of expert solutions, one row per instance.

    ``stats[name]`` and ``expert_ids`` have shape (instances, last_n); tokens are
    right-aligned (an instance's last token sits in the last column) and NaN / -1 pad.
    """

    stats: dict[str, np.ndarray]
    expert_ids: np.ndarray
    n_tokens: np.ndarray


def read_pairs(path: str | Path) -> list[ExpertPair]:
    """Read (prompt, expert solution) pairs from a JSON-lines file.

    Parameters
    ----------
    path : str or Path
        One JSON object per line with string fields ``prompt`` and ``solution``; blank
        lines are skipped.

    Returns
    -------
    list of ExpertPair

    Raises
    ------
    PairsFileError
        A missing file, bad JSON, or lines without the two string fields (named by line).

    Examples
    --------
    >>> import json, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "pairs.jsonl"
    >>> _ = path.write_text(json.dumps({"prompt": "2+2=", "solution": "4"}))
    >>> read_pairs(path)
    [ExpertPair(prompt='2+2=', solution='4')]
    """
    path = Path(path)
    if not path.is_file():
        raise PairsFileError(
            f"pairs file {str(path)!r} does not exist.",
            "pass a JSON-lines file with one {'prompt': ..., 'solution': ...} per line.",
        )
    pairs: list[ExpertPair] = []
    bad: list[int] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            bad.append(number)
            continue
        if (
            not isinstance(record, dict)
            or not isinstance(record.get("prompt"), str)
            or not isinstance(record.get("solution"), str)
            or not record["solution"]
        ):
            bad.append(number)
            continue
        pairs.append(ExpertPair(record["prompt"], record["solution"]))
    if bad:
        shown = ", ".join(str(n) for n in bad[:5]) + (", ..." if len(bad) > 5 else "")
        raise PairsFileError(
            f"{str(path)!r}: line(s) {shown} ({len(bad)} in all) are not JSON objects with "
            "string 'prompt' and non-empty string 'solution' fields.",
            'write one object per line, e.g. {"prompt": "Q: ...", "solution": "A: ..."}.',
        )
    if not pairs:
        raise PairsFileError(f"{str(path)!r} holds no pairs.", "add at least one line.")
    return pairs


def _encode(tokenizer: Any, pairs: Sequence[ExpertPair], max_length: int) -> list[tuple]:
    """Token ids of each pair and where its solution starts, cut to the last max_length."""
    encoded = []
    for pair in pairs:
        prompt = list(tokenizer(pair.prompt, add_special_tokens=True)["input_ids"])
        solution = list(tokenizer(pair.solution, add_special_tokens=False)["input_ids"])
        ids = prompt + solution
        start = len(prompt)
        # keep the end: the last solution tokens are the ones that count
        cut = max(0, len(ids) - max_length)
        encoded.append((ids[cut:], max(start - cut, 0)))
    return encoded


def score_pairs(
    model: Any,
    tokenizer: Any,
    pairs: Sequence[ExpertPair],
    *,
    batch_size: int = 8,
    last_n: int = 1000,
    max_length: int | None = None,
    chunk_bytes: int | None = None,
) -> ScoredCorpus:
    """Teacher-force a causal LM over expert solutions and keep per-token statistics.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        A causal LM (``model(input_ids=..., attention_mask=...).logits``); run on its own
        device, in evaluation mode, without gradients.
    tokenizer : transformers.PreTrainedTokenizerBase
        Its tokenizer; the prompt is encoded with special tokens, the solution without.
    pairs : sequence of ExpertPair
        The instances.
    batch_size : int, default 8
        Sequences per forward pass (sorted by length to limit padding).
    last_n : int, default 1000
        Solution tokens kept per instance (the last ones).
    max_length : int, optional
        Longest sequence fed to the model; longer ones lose their beginning. Default: the
        model's ``max_position_embeddings`` when it has one.
    chunk_bytes : int
        See :func:`~bayesproxy.tokens.token_statistics`.

    Returns
    -------
    ScoredCorpus

    Examples
    --------
    >>> corpus = score_pairs(model, tokenizer, read_pairs("pairs.jsonl"))  # doctest: +SKIP
    >>> task_scores(corpus.stats, expert_ids=corpus.expert_ids, last_n=None)  # doctest: +SKIP
    """
    import torch

    if batch_size < 1 or last_n < 1:
        raise TokenInputError(
            f"batch_size and last_n must be positive; got {batch_size} and {last_n}.",
            "use e.g. batch_size=8, last_n=1000.",
        )
    if not pairs:
        raise TokenInputError("no (prompt, solution) pairs to score.", "pass at least one.")
    if max_length is None:
        max_length = int(getattr(model.config, "max_position_embeddings", 0) or 1_000_000)
    encoded = _encode(tokenizer, pairs, max_length)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    n = len(pairs)
    stats = {name: np.full((n, last_n), np.nan) for name in STATISTICS}
    expert_ids = np.full((n, last_n), -1, dtype=np.int64)
    n_tokens = np.zeros(n, dtype=np.int64)
    order = np.argsort([len(ids) for ids, _ in encoded], kind="stable")
    was_training = model.training
    model.eval()
    try:
        for begin in range(0, n, batch_size):
            members = order[begin : begin + batch_size]
            width = max(len(encoded[i][0]) for i in members)
            ids = np.full((len(members), width), pad_id, dtype=np.int64)
            attention = np.zeros((len(members), width), dtype=np.int64)
            scored = np.zeros((len(members), width - 1), dtype=bool)
            for row, i in enumerate(members):
                seq, start = encoded[i]
                ids[row, : len(seq)] = seq
                attention[row, : len(seq)] = 1
                # logits at t predict token t + 1: solution tokens start..len-1, and the
                # first token of a sequence (no context) cannot be scored
                scored[row, max(start - 1, 0) : len(seq) - 1] = True
            input_ids = torch.as_tensor(ids, device=device)
            with torch.inference_mode():
                logits = model(
                    input_ids=input_ids, attention_mask=torch.as_tensor(attention, device=device)
                ).logits
            batch = token_statistics(
                logits[:, :-1], ids[:, 1:], mask=scored, chunk_bytes=chunk_bytes
            )
            for row, i in enumerate(members):
                cols = np.flatnonzero(scored[row])[-last_n:]
                n_tokens[i] = cols.size
                if cols.size:
                    for name in STATISTICS:
                        stats[name][i, last_n - cols.size :] = batch[name][row, cols]
                    expert_ids[i, last_n - cols.size :] = ids[row, cols + 1]
            del logits
    finally:
        model.train(was_training)
    return ScoredCorpus(stats=stats, expert_ids=expert_ids, n_tokens=n_tokens)


def token_metric_rows(
    model: Any,
    tokenizer: Any,
    pairs: Sequence[ExpertPair],
    *,
    model_name: str,
    step: float = math.nan,
    weightings: Sequence[str] = WEIGHTINGS,
    statistics: Sequence[str] = STATISTICS,
    batch_size: int = 8,
    last_n: int = 1000,
    max_length: int | None = None,
) -> pd.DataFrame:
    """Token metrics of one model (checkpoint) as long benchmark-table rows.

    Parameters
    ----------
    model, tokenizer, pairs
        As for :func:`score_pairs`.
    model_name : str
        The ``model`` column of the rows.
    step : float, optional
        The checkpoint's training step (``step`` column); NaN when not a checkpoint.
    weightings, statistics : sequence of str
        Which token metrics to emit (default: all statistics under all weightings).
    batch_size, last_n, max_length
        As for :func:`score_pairs`.

    Returns
    -------
    pandas.DataFrame
        Columns ``model, step, task, score, stderr, n_instances, higher_is_better,
        is_fraction``; ``task`` is the metric name (e.g. ``tokens.top5.inverse_frequency``),
        ready for :func:`bayesproxy.read_table` next to the target's evaluations.

    Examples
    --------
    >>> rows = token_metric_rows(lm, tok, pairs, model_name="a", step=2000)  # doctest: +SKIP
    >>> rows.to_csv("token_metrics.csv", index=False)  # doctest: +SKIP
    """
    corpus = score_pairs(
        model, tokenizer, pairs, batch_size=batch_size, last_n=last_n, max_length=max_length
    )
    frame = task_scores(
        corpus.stats,
        expert_ids=corpus.expert_ids,
        weightings=weightings,
        statistics=statistics,
        last_n=None,
    )
    # top-k accuracy and reciprocal rank are accuracy-like fractions (higher is better);
    # the others are metrics (a loss, a rank, or probabilities where lower is better)
    fraction = frame["statistic"].str.startswith("top") | (frame["statistic"] == "reciprocal_rank")
    return pd.DataFrame(
        {
            "model": model_name,
            "step": float(step),
            "task": frame["task"],
            "score": frame["score"],
            "stderr": frame["stderr"],
            "n_instances": frame["n_instances"],
            "higher_is_better": frame["higher_is_better"],
            "is_fraction": fraction.to_numpy(),
        }
    )
