"""Cost of the token metrics: overhead against the forward pass, and bounded memory.

Two measurements, each in one process so the numbers compare side by side:

1. ``overhead``: a small randomly initialised GPT-2 (transformers) on CPU; the forward
   pass over a batch and ``token_statistics`` over its logits are timed alternately
   (median of ``--repeats``), and the ratio is the metric overhead.
2. ``memory``: ``token_statistics`` over float32 logits of ``--vocab`` x ``--tokens``
   (default 150k x 4k, 2.4 GB) held in a memory-mapped file, so the traced peak
   (``tracemalloc``, which sees NumPy's allocations) is the function's own working memory,
   to compare with the chunk size.

    python benchmarks/bench_tokens.py overhead
    python benchmarks/bench_tokens.py memory --vocab 150000 --tokens 4096
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from bayesproxy.tokens import DEFAULT_CHUNK_BYTES, token_statistics


def overhead(args: argparse.Namespace) -> None:
    import torch
    import transformers

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=args.vocab,
        n_positions=args.seq,
        n_embd=args.width,
        n_layer=args.layers,
        n_head=max(1, args.width // 64),
    )
    model = transformers.GPT2LMHeadModel(config).eval()
    n_params = sum(p.numel() for p in model.parameters())
    ids = torch.randint(0, args.vocab, (args.batch, args.seq))
    forward, metrics = [], []
    for _ in range(args.repeats + 1):  # the first round warms up
        start = time.perf_counter()
        with torch.inference_mode():
            logits = model(input_ids=ids).logits
        forward.append(time.perf_counter() - start)
        start = time.perf_counter()
        token_statistics(logits[:, :-1], ids[:, 1:])
        metrics.append(time.perf_counter() - start)
    f, m = statistics.median(forward[1:]), statistics.median(metrics[1:])
    print(
        f"model: GPT-2 {args.layers} layers, width {args.width}, vocab {args.vocab}, "
        f"{n_params / 1e6:.1f}M parameters; batch {args.batch} x {args.seq} tokens; "
        f"torch threads {torch.get_num_threads()}"
    )
    print(f"forward   median {f * 1e3:8.1f} ms  (all: {[round(t * 1e3) for t in forward[1:]]})")
    print(f"metrics   median {m * 1e3:8.1f} ms  (all: {[round(t * 1e3) for t in metrics[1:]]})")
    print(f"overhead  {100 * m / f:.1f}% of the forward pass")


def memory(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "logits.npy"
        logits = np.lib.format.open_memmap(
            path, mode="w+", dtype=np.float32, shape=(args.tokens, args.vocab)
        )
        for start in range(0, args.tokens, 256):
            stop = min(start + 256, args.tokens)
            logits[start:stop] = rng.standard_normal((stop - start, args.vocab), np.float32)
        logits.flush()
        ids = rng.integers(0, args.vocab, size=args.tokens)
        chunk = args.chunk_mib * 2**20
        tracemalloc.start()
        start = time.perf_counter()
        stats = token_statistics(logits, ids, chunk_bytes=chunk)
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        del logits
    size = args.tokens * args.vocab * 4
    print(f"logits: {args.tokens} tokens x {args.vocab} vocab float32 = {size / 2**30:.2f} GiB")
    print(f"chunk_bytes: {chunk / 2**20:.0f} MiB ({chunk // (args.vocab * 4)} rows per chunk)")
    print(f"peak traced memory in token_statistics: {peak / 2**20:.1f} MiB")
    print(f"time: {elapsed:.2f} s ({args.tokens / elapsed:.0f} tokens/s)")
    print(f"mean cross-entropy {np.mean(stats['cross_entropy']):.3f} (log vocab + 0.5 = ", end="")
    print(f"{np.log(args.vocab) + 0.5:.3f} expected for standard normal logits)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    o = sub.add_parser("overhead")
    o.add_argument("--vocab", type=int, default=32000)
    o.add_argument("--width", type=int, default=256)
    o.add_argument("--layers", type=int, default=4)
    o.add_argument("--batch", type=int, default=4)
    o.add_argument("--seq", type=int, default=512)
    o.add_argument("--repeats", type=int, default=5)
    o.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    m = sub.add_parser("memory")
    m.add_argument("--vocab", type=int, default=150_000)
    m.add_argument("--tokens", type=int, default=4096)
    m.add_argument("--chunk-mib", type=int, default=DEFAULT_CHUNK_BYTES // 2**20)
    args = parser.parse_args()
    {"overhead": overhead, "memory": memory}[args.what](args)


if __name__ == "__main__":
    main()
