"""``bayesproxy tokens``: token-level proxy metrics of a local causal LM as table rows."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from bayesproxy.cli._app import app

__all__ = ["tokens"]


@app.command("tokens")
def tokens(
    model: Annotated[Path, typer.Option(help="Local directory of a transformers causal LM.")],
    data: Annotated[Path, typer.Option(help="JSON-lines file of {prompt, solution} pairs.")],
    out: Annotated[Path, typer.Option(help="CSV file to write the benchmark rows to.")],
    tokenizer: Annotated[
        Path | None, typer.Option(help="Local tokenizer directory (default: --model).")
    ] = None,
    model_name: Annotated[
        str | None, typer.Option(help="Value of the 'model' column (default: directory name).")
    ] = None,
    step: Annotated[float, typer.Option(help="Training step of this checkpoint.")] = math.nan,
    last_n: Annotated[int, typer.Option(help="Solution tokens kept per instance.")] = 1000,
    batch_size: Annotated[int, typer.Option(help="Sequences per forward pass.")] = 8,
    device: Annotated[str, typer.Option(help="torch device, e.g. cpu or cuda.")] = "cpu",
    append: Annotated[bool, typer.Option(help="Append to --out instead of replacing it.")] = False,
) -> None:
    """Score a model's next-token distributions over expert solutions.

    Writes one benchmark row per token metric (model, step, task, score,
    stderr, ...), ready to read next to the target's evaluations as proxies.
    Nothing is downloaded: model and tokenizer come from local directories.
    """
    from bayesproxy.tokens.errors import PairsFileError
    from bayesproxy.tokens.hf import read_pairs, token_metric_rows

    tokenizer = tokenizer or model
    for what, path in (("model", model), ("tokenizer", tokenizer)):
        if not path.is_dir():
            raise PairsFileError(
                f"--{what} {str(path)!r} is not a directory.",
                "save the model / tokenizer with save_pretrained(...) and pass that folder; "
                "hub names are not fetched.",
            )
    pairs = read_pairs(data)

    import pandas as pd
    from transformers import AutoModelForCausalLM, AutoTokenizer

    lm = AutoModelForCausalLM.from_pretrained(model, local_files_only=True).to(device)
    tok = AutoTokenizer.from_pretrained(tokenizer, local_files_only=True)
    rows = token_metric_rows(
        lm,
        tok,
        pairs,
        model_name=model_name or model.resolve().name,
        step=step,
        batch_size=batch_size,
        last_n=last_n,
    )
    if append and out.exists():
        rows = pd.concat([pd.read_csv(out), rows], ignore_index=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows.to_csv(out, index=False)
    typer.echo(f"wrote {len(rows)} rows ({len(pairs)} instances) to {out}")
