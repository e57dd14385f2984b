"""Run NumPy work on blocks of rows in parallel threads.

NumPy releases the GIL inside its loops (random draws, partitions, elementwise arithmetic on
large arrays), so a (units, draws) array split into row blocks uses every core of the
machine from plain threads. Blocks have a fixed size, so anything that depends on the block
layout (e.g. one random generator per block) depends on the array's shape, not on the number
of threads.

Examples
--------
>>> import numpy as np
>>> out = np.zeros(5000)
>>> def fill(rows):
...     out[rows] = np.arange(rows.start, rows.stop)
>>> for_row_blocks(fill, 5000)
>>> bool((out == np.arange(5000)).all())
True
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = [
    "ROW_BLOCK",
    "block_generators",
    "for_row_blocks",
    "row_blocks",
    "spawn",
    "usable_cpus",
]

#: Rows per block.
ROW_BLOCK = 1024


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def row_blocks(n_rows: int, *, block: int | None = None) -> list[slice]:
    """Consecutive slices of at most ``block`` rows (default :data:`ROW_BLOCK`) over ``n_rows``.

    Examples
    --------
    >>> row_blocks(5, block=2)
    [slice(0, 2, None), slice(2, 4, None), slice(4, 5, None)]
    """
    size = block or ROW_BLOCK
    return [slice(start, min(start + size, n_rows)) for start in range(0, n_rows, size)]


def for_row_blocks(
    func: Callable[[slice], object], n_rows: int, *, block: int | None = None
) -> None:
    """Call ``func(rows)`` for every block of :func:`row_blocks`, on up to one thread per CPU.

    ``func`` writes its result (e.g. into a preallocated array); exceptions propagate.
    """
    blocks = row_blocks(n_rows, block=block)
    workers = min(len(blocks), usable_cpus())
    if workers <= 1:
        for rows in blocks:
            func(rows)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(func, blocks))


def spawn(rng: np.random.Generator, n: int) -> list[np.random.Generator]:
    """``n`` independent child generators of ``rng``, one per block.

    ``rng.spawn`` where the generator has a seed sequence (``np.random.default_rng(seed)``
    always has); otherwise children seeded from ``rng``'s own stream.

    Examples
    --------
    >>> a = spawn(np.random.default_rng(1), 2)
    >>> b = spawn(np.random.default_rng(1), 2)
    >>> bool(a[1].integers(100) == b[1].integers(100))
    True
    """
    try:
        return rng.spawn(n)
    except TypeError:  # e.g. a Generator over a legacy-seeded MT19937
        return [np.random.default_rng(seed) for seed in rng.integers(2**63, size=n)]


def block_generators(rng: np.random.Generator, n_rows: int) -> dict[int, np.random.Generator]:
    """One child generator of ``rng`` per block of :func:`row_blocks`, keyed by block start.

    Random draws made block by block with these depend on the seed and ``n_rows`` only,
    whatever thread draws which block.

    Examples
    --------
    >>> sorted(block_generators(np.random.default_rng(0), 2000))
    [0, 1024]
    """
    blocks = row_blocks(n_rows)
    return dict(zip((b.start for b in blocks), spawn(rng, len(blocks)), strict=True))
