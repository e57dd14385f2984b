"""Per-token statistics of a model's next-token distribution at the expert's tokens.

One pass over the logits, a bounded chunk of vocabulary-sized rows at a time, computes
everything the proxy metrics need (cross-entropy, expert-token rank, normalised entropy, top
and expert probabilities); the other statistics follow from those on the host. NumPy arrays
are scored with NumPy; PyTorch tensors are scored on their own device, and only the few
numbers per token travel to the host.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np

from bayesproxy.tokens.errors import TokenInputError, format_positions

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "DEVICE_CHUNK_BYTES",
    "HIGHER_IS_BETTER",
    "STATISTICS",
    "TOP_K",
    "token_statistics",
]

TOP_K = (1, 2, 3, 5)
STATISTICS = (
    "cross_entropy",
    *(f"top{k}" for k in TOP_K),
    "entropy",
    "rank",
    "reciprocal_rank",
    "margin",
    "wrong_confidence",
)
# direction of "better model" for each statistic, as the benchmark table records it
HIGHER_IS_BETTER = {
    "cross_entropy": False,
    **{f"top{k}": True for k in TOP_K},
    "entropy": False,
    "rank": False,
    "reciprocal_rank": True,
    "margin": False,
    "wrong_confidence": False,
}
# bytes of one chunk of logits in the compute dtype; peak working memory is about three
# times this (the chunk, its exponentials, one boolean comparison), whatever the input size.
# On the host a cache-sized chunk is fastest; accelerators want large launches.
DEFAULT_CHUNK_BYTES = 4 * 2**20
DEVICE_CHUNK_BYTES = 256 * 2**20


def _is_torch_tensor(x: object) -> bool:
    # never import torch here: NumPy users must not need it
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _to_host(x: Any) -> np.ndarray:
    """Return a small array (ids or mask) as NumPy, whatever library holds it."""
    if _is_torch_tensor(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _validate(
    logits: Any, expert_ids: Any, mask: Any
) -> tuple[tuple[int, ...], int, np.ndarray, np.ndarray]:
    shape = tuple(int(n) for n in logits.shape)
    if len(shape) < 2:
        raise TokenInputError(
            f"logits must have shape (..., tokens, vocab); got shape {shape}.",
            "pass one row of vocabulary logits per token, e.g. a model's output logits.",
        )
    lead, vocab = shape[:-1], shape[-1]
    if vocab < 2:
        raise TokenInputError(
            f"the vocabulary axis (last) of the logits has size {vocab}; at least 2 are needed.",
            "check that the last axis of the logits is the vocabulary.",
        )
    ids = _to_host(expert_ids)
    if ids.shape != lead:
        raise TokenInputError(
            f"expert_ids has shape {ids.shape} but the logits need {lead} "
            f"(the logits' shape {shape} without the vocabulary axis).",
            "give one expert token id per logits row; for a causal LM shift by one "
            "(logits[..., :-1, :] against input_ids[..., 1:]).",
        )
    if mask is None:
        keep = np.ones(lead, dtype=bool)
    else:
        keep = _to_host(mask)
        if keep.shape != lead:
            raise TokenInputError(
                f"mask has shape {keep.shape} but expert_ids has shape {lead}.",
                "pass one boolean per token (True = score it), shaped like expert_ids.",
            )
        if keep.dtype != bool:
            if not np.all(np.isin(keep, (0, 1))):
                raise TokenInputError(
                    f"mask must be boolean (or 0/1); got values of dtype {keep.dtype}.",
                    "use True for tokens to score and False for padding or prompt tokens.",
                )
            keep = keep.astype(bool)
    if not (np.issubdtype(ids.dtype, np.integer) or ids.size == 0):
        raise TokenInputError(
            f"expert_ids must hold integer token ids; got dtype {ids.dtype}.",
            "pass the tokenizer's ids (e.g. input_ids), not probabilities or strings.",
        )
    ids = ids.astype(np.int64, copy=False)
    bad = keep & ((ids < 0) | (ids >= vocab))
    if bad.any():
        where = np.argwhere(bad)
        raise TokenInputError(
            f"expert_ids outside the vocabulary [0, {vocab}) at {format_positions(where)}: "
            f"{', '.join(str(v) for v in ids[bad][:3])}.",
            "mask padding positions (e.g. id -100) with mask=..., or check that the "
            "logits come from the same tokenizer as the ids.",
        )
    return lead, vocab, ids, keep


def _pieces(positions: np.ndarray, lead: tuple[int, ...], rows: int) -> Iterator[tuple]:
    """Split scored positions into chunks of at most ``rows`` logits rows.

    Yields ``(part, index)``: ``part`` slices ``positions``; ``index`` selects the chunk's
    rows from the logits, as plain slicing (a view, no copy) when the chunk is a run of
    consecutive tokens of one instance, and as advanced indexing (a chunk-sized copy)
    otherwise. Masks that hide a prompt and padding leave long runs, so views dominate.
    """
    n_tok = lead[-1]
    instance, token = np.divmod(positions, n_tok)
    # a new run starts where the instance changes or a token is skipped
    breaks = np.flatnonzero((np.diff(instance) != 0) | (np.diff(token) != 1)) + 1
    run_starts = np.concatenate([[0], breaks])
    run_ends = np.concatenate([breaks, [positions.size]])
    pending: list[slice] = []
    pending_rows = 0

    def flush() -> tuple:
        part = slice(pending[0].start, pending[-1].stop)
        if len(pending) == 1:
            head = np.unravel_index(instance[part.start], lead[:-1]) if lead[:-1] else ()
            view = (*(int(i) for i in head), slice(token[part.start], token[part.stop - 1] + 1))
            return part, view
        return part, np.unravel_index(positions[part], lead)

    for run_start, run_end in zip(run_starts, run_ends, strict=True):
        for begin in range(int(run_start), int(run_end), rows):
            piece = slice(begin, min(begin + rows, int(run_end)))
            size = piece.stop - piece.start
            if pending and pending_rows + size > rows:
                yield flush()
                pending, pending_rows = [], 0
            pending.append(piece)
            pending_rows += size
    if pending:
        yield flush()


def _numpy_chunk(x: np.ndarray, ids: np.ndarray, buffers: tuple) -> tuple[np.ndarray, ...]:
    """Raw numbers of one chunk; ``x`` is only read (it may be a view of the caller's array).

    ``buffers`` are chunk-sized work arrays reused across chunks, so the working memory
    stays at a few chunks and no pass is spent copying ``x``.
    """
    n = x.shape[0]
    z, ex, larger = (buffer[:n] for buffer in buffers)
    x_expert = x[np.arange(n), ids]
    x_max = x.max(axis=1)
    # rank from the logits themselves: softmax is monotone, and comparing logits avoids
    # ties created by rounding probabilities
    np.greater(x, x_expert[:, None], out=larger)
    rank = 1 + larger.view(np.uint8).sum(axis=1, dtype=np.int64)
    np.subtract(x, x_max[:, None], out=z)
    np.exp(z, out=ex)
    total = ex.sum(axis=1)
    log_total = np.log(total)
    mean_z = np.linalg.vecdot(ex, z) / total
    holes = np.isnan(mean_z)
    if holes.any():
        # 0 * -inf at -inf logits (tokens the model cannot emit; or a bad row, reported
        # later): recompute those rows counting such terms as 0
        finite = np.maximum(z[holes], np.finfo(z.dtype).min)
        mean_z[holes] = (np.exp(finite) * finite).sum(axis=1) / total[holes]
    # log p(top) = -log_total; sum p log p = E[z] - log_total
    return -log_total, x_expert - x_max - log_total, mean_z - log_total, rank


def _torch_chunk(x: Any, ids: Any) -> np.ndarray:
    """Raw numbers of one chunk on the tensor's device; ``x`` is never modified."""
    torch = sys.modules["torch"]
    logp = torch.log_softmax(x, dim=1)
    lp_expert = logp.gather(1, ids[:, None])[:, 0]
    x_expert = x.gather(1, ids[:, None])
    rank = 1 + (x > x_expert).sum(dim=1, dtype=torch.int32)
    p = torch.exp(logp)
    p_log_p = torch.linalg.vecdot(p, logp)
    holes = torch.isnan(p_log_p)
    if bool(holes.any()):
        # 0 * log 0 at -inf logits (or a bad row, reported later): count those terms as 0
        fix = logp[holes].clamp(min=torch.finfo(logp.dtype).min)
        p_log_p[holes] = (p[holes] * fix).sum(dim=1)
    out = torch.stack([logp.amax(dim=1), lp_expert, p_log_p, rank.to(logp.dtype)])
    return out.double().cpu().numpy()


def _row_statistics(
    logits: Any, positions: np.ndarray, ids: np.ndarray, lead: tuple[int, ...], chunk_bytes: int
) -> np.ndarray:
    """Raw per-token numbers (log p top, log p expert, sum p log p, rank) at ``positions``."""
    vocab = int(logits.shape[-1])
    raw = np.empty((4, positions.size), dtype=np.float64)
    if _is_torch_tensor(logits):
        torch = sys.modules["torch"]
        host_dtypes = (torch.float16, torch.float32, torch.float64)
        if logits.device.type == "cpu" and logits.dtype in host_dtypes:
            # a CPU tensor shares its memory with a NumPy view (no copy), and NumPy on
            # cache-sized chunks beats torch's kernels on the host
            return _row_statistics(logits.detach().numpy(), positions, ids, lead, chunk_bytes)
    if _is_torch_tensor(logits):
        device = logits.device
        compute = logits.dtype if logits.dtype == torch.float64 else torch.float32
        itemsize = 8 if compute == torch.float64 else 4
        step = max(1, chunk_bytes // (vocab * itemsize))
        with torch.inference_mode():
            source = logits.detach()
            for part, index in _pieces(positions, lead, step):
                if not isinstance(index[-1], slice):
                    index = tuple(torch.as_tensor(i, device=device) for i in index)
                x = source[index].to(compute)
                chunk_ids = torch.as_tensor(ids[part], device=device)
                raw[:, part] = _torch_chunk(x, chunk_ids)
        return raw
    array = np.asarray(logits)
    if not np.issubdtype(array.dtype, np.floating):
        raise TokenInputError(
            f"logits must be floating point; got dtype {array.dtype}.",
            "pass the model's raw logits or log-probabilities as floats.",
        )
    compute = np.float64 if array.dtype == np.float64 else np.float32
    step = max(1, chunk_bytes // (vocab * np.dtype(compute).itemsize))
    rows = min(step, positions.size)
    buffers = (
        np.empty((rows, vocab), compute),
        np.empty((rows, vocab), compute),
        np.empty((rows, vocab), bool),
    )
    for part, index in _pieces(positions, lead, step):
        # a view for runs of tokens; a chunk-sized copy for gathers and other dtypes
        x = np.asarray(array[index], dtype=compute)
        # NaN / inf rows are reported after the pass, by position, not as warnings here
        with np.errstate(all="ignore"):
            raw[:, part] = np.stack(_numpy_chunk(x, ids[part], buffers))
    return raw


def token_statistics(
    logits: Any,
    expert_ids: Any,
    *,
    mask: Any = None,
    chunk_bytes: int | None = None,
) -> dict[str, np.ndarray]:
    """Per-token statistics of the next-token distribution at the expert's tokens.

    Parameters
    ----------
    logits : array_like or torch.Tensor, shape (..., tokens, vocab)
        Next-token logits (or log-probabilities: the statistics are invariant to a constant
        shift per row). ``-inf`` entries are allowed (tokens the model cannot emit). PyTorch
        tensors are processed on their own device (CPU or GPU) in half, single or double
        precision (half precision is computed in float32).
    expert_ids : array_like or torch.Tensor of int, shape (..., tokens)
        The expert solution's token at each position (the token the logits should predict).
    mask : array_like of bool, shape (..., tokens), optional
        True where a token is scored; False for padding, prompt tokens and the like (their
        ids are not checked and their statistics are NaN). Default: every token.
    chunk_bytes : int, optional
        Size of the block of logits rows processed at once (in the compute dtype); the
        working memory is about three times this, independent of sequence length and
        vocabulary size (at least one row is processed at a time). Default: 4 MiB on the
        host (cache-sized), 256 MiB for tensors on an accelerator.

    Returns
    -------
    dict of str to numpy.ndarray
        One float64 array of shape (..., tokens) per statistic, NaN at masked tokens:

        - ``cross_entropy``: -log p(expert), in nats;
        - ``top1``, ``top2``, ``top3``, ``top5``: 1.0 when rank <= k, else 0.0;
        - ``entropy``: entropy of the next-token distribution divided by log(vocab), in
          [0, 1];
        - ``rank``: 1 + number of tokens strictly more probable than the expert's (ties
          never penalise the expert token; 1 = the expert token is an argmax);
        - ``reciprocal_rank``: 1 / rank;
        - ``margin``: top probability minus the expert token's probability (>= 0);
        - ``wrong_confidence``: the top probability where the expert token is not top-1,
          NaN where it is.

    Raises
    ------
    TokenInputError
        When shapes disagree, ids are not integers or fall outside the vocabulary at scored
        positions, or a scored row of logits holds NaN, +inf or only -inf.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesproxy.tokens import token_statistics
    >>> logits = np.log(np.array([[0.7, 0.2, 0.1], [0.2, 0.2, 0.6]]))
    >>> stats = token_statistics(logits, np.array([0, 1]))
    >>> stats["rank"], stats["top1"]
    (array([1., 2.]), array([1., 0.]))
    >>> np.round(stats["margin"], 3), stats["wrong_confidence"].round(3)
    (array([0. , 0.4]), array([nan, 0.6]))
    """
    if chunk_bytes is None:
        on_device = _is_torch_tensor(logits) and logits.device.type != "cpu"
        chunk_bytes = DEVICE_CHUNK_BYTES if on_device else DEFAULT_CHUNK_BYTES
    if int(chunk_bytes) < 1:
        raise TokenInputError(
            f"chunk_bytes must be positive; got {chunk_bytes}.",
            "leave it at None (the default) or pass a few MiB to hundreds of MiB.",
        )
    lead, vocab, ids, keep = _validate(logits, expert_ids, mask)
    positions = np.flatnonzero(keep)
    flat_ids = ids.reshape(-1)[positions]
    lp_top, lp_expert, p_log_p, rank = _row_statistics(
        logits, positions, flat_ids, lead, int(chunk_bytes)
    )
    bad = ~np.isfinite(lp_top)
    if bad.any():
        where = np.argwhere(keep)[bad]
        raise TokenInputError(
            f"logits rows at {format_positions(where)} contain NaN or +inf, or are all -inf.",
            "check the model's output for overflow (e.g. compute in float32) or mask "
            "those positions.",
        )
    with np.errstate(over="ignore", divide="ignore"):
        cross_entropy = -lp_expert  # +inf where the expert token has p = 0
        p_expert = np.exp(lp_expert)
        p_top = np.exp(lp_top)
        entropy = np.clip(-p_log_p / math.log(vocab), 0.0, 1.0)
        values = {
            "cross_entropy": cross_entropy,
            **{f"top{k}": (rank <= k).astype(np.float64) for k in TOP_K},
            "entropy": entropy,
            "rank": rank,
            "reciprocal_rank": 1.0 / rank,
            "margin": np.maximum(p_top - p_expert, 0.0),
            "wrong_confidence": np.where(rank > 1, p_top, np.nan),
        }
    out: dict[str, np.ndarray] = {}
    for name in STATISTICS:
        full = np.full(keep.size, np.nan)
        full[positions] = values[name]
        out[name] = full.reshape(lead)
    return out
