"""The transformers adapter and the ``bayesproxy tokens`` command, on a tiny local model.

The tokenizer is trained here on a synthetic corpus and the model is randomly initialised
from a config: nothing is downloaded.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is an optional extra (bayesproxy[tokens])")
transformers = pytest.importorskip(
    "transformers", reason="transformers is an optional extra (bayesproxy[tokens])"
)
tokenizers = pytest.importorskip(
    "tokenizers", reason="tokenizers is an optional extra (bayesproxy[tokens])"
)

from typer.testing import CliRunner  # noqa: E402

from bayesproxy.errors import BayesproxyError  # noqa: E402
from bayesproxy.io import read_table  # noqa: E402
from bayesproxy.tokens import STATISTICS, WEIGHTINGS, token_statistics  # noqa: E402
from bayesproxy.tokens.hf import (  # noqa: E402
    ExpertPair,
    read_pairs,
    score_pairs,
    token_metric_rows,
)

WORDS = [f"w{i}" for i in range(40)]


def synthetic_pairs(n: int, seed: int) -> list[ExpertPair]:
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(n):
        prompt = " ".join(rng.choice(WORDS, size=rng.integers(0, 6)))
        solution = " ".join(rng.choice(WORDS, size=rng.integers(1, 14)))
        pairs.append(ExpertPair(prompt, solution))
    return pairs


@pytest.fixture(scope="module")
def tiny_lm():
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers

    raw = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.WordLevelTrainer(special_tokens=["[PAD]", "[UNK]", "[BOS]"])
    raw.train_from_iterator([" ".join(WORDS)] * 3, trainer=trainer)
    bos = raw.token_to_id("[BOS]")
    raw.post_processor = processors.TemplateProcessing(
        single="[BOS] $A", special_tokens=[("[BOS]", bos)]
    )
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=raw, pad_token="[PAD]", unk_token="[UNK]", bos_token="[BOS]"
    )
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=raw.get_vocab_size(), n_positions=32, n_embd=32, n_layer=2, n_head=2
    )
    model = transformers.GPT2LMHeadModel(config)
    model.eval()
    return model, tokenizer


def test_batched_scores_match_one_sequence_at_a_time(tiny_lm):
    model, tokenizer = tiny_lm
    pairs = synthetic_pairs(7, seed=1)
    corpus = score_pairs(model, tokenizer, pairs, batch_size=3, last_n=10)
    for i, pair in enumerate(pairs):
        prompt = tokenizer(pair.prompt)["input_ids"]
        solution = tokenizer(pair.solution, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([prompt + solution])
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0]
        # the model's own loss on the solution tokens is the reference cross-entropy
        targets = ids[0, len(prompt) :]
        ce = torch.nn.functional.cross_entropy(
            logits[len(prompt) - 1 : -1], targets, reduction="none"
        ).numpy()[-10:]
        assert corpus.n_tokens[i] == len(ce)
        got = corpus.stats["cross_entropy"][i]
        np.testing.assert_allclose(got[10 - len(ce) :], ce, rtol=1e-5)
        assert np.isnan(got[: 10 - len(ce)]).all()
        single = token_statistics(logits[len(prompt) - 1 : -1][-10:], targets[-10:])
        for name in STATISTICS:
            np.testing.assert_allclose(
                corpus.stats[name][i, 10 - len(ce) :], single[name], rtol=1e-5, atol=1e-6
            )
        np.testing.assert_array_equal(corpus.expert_ids[i, 10 - len(ce) :], targets[-10:])


def test_rows_are_benchmark_table_rows(tiny_lm):
    model, tokenizer = tiny_lm
    rows = token_metric_rows(
        model, tokenizer, synthetic_pairs(5, seed=2), model_name="tiny", step=100, last_n=8
    )
    assert list(rows.columns[:4]) == ["model", "step", "task", "score"]
    assert len(rows) == len(STATISTICS) * len(WEIGHTINGS)
    assert (rows["model"] == "tiny").all() and (rows["step"] == 100).all()
    assert rows["task"].is_unique
    top1 = rows.set_index("task").loc["tokens.top1.uniform"]
    assert 0 <= top1["score"] <= 1 and top1["n_instances"] == 5
    assert rows.set_index("task").loc["tokens.cross_entropy.uniform", "score"] > 0
    # the rows are a benchmark table as they stand, next to the target's evaluations
    torch.manual_seed(1)
    later_model = transformers.GPT2LMHeadModel(model.config).eval()
    later = token_metric_rows(
        later_model, tokenizer, synthetic_pairs(5, seed=2), model_name="tiny", step=200, last_n=8
    )
    # (two random tiny models can tie on top-1: constant tasks are dropped)
    table = read_table(pd.concat([rows, later]), drop_constant=True)
    ds = table.dataset
    assert ds.sizes["unit"] == 2 and ds.sizes["task"] > len(rows) // 2
    kind = dict(zip(ds["task"].values, ds["kind"].values, strict=True))
    assert kind["tokens.top5.uniform"] == "accuracy"
    assert kind["tokens.cross_entropy.p"] == "metric"
    assert not ds["higher_is_better"].sel(task="tokens.rank.uniform")


def test_cli_writes_rows_from_local_directories(tiny_lm, tmp_path):
    from bayesproxy.cli import tokens as _  # noqa: F401  (registers the command)
    from bayesproxy.cli._app import app

    model, tokenizer = tiny_lm
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "tokenizer")
    pairs = synthetic_pairs(6, seed=3)
    data = tmp_path / "pairs.jsonl"
    data.write_text(
        "\n".join(json.dumps({"prompt": p.prompt, "solution": p.solution}) for p in pairs)
    )
    out = tmp_path / "rows.csv"
    args = ["tokens", "--model", str(tmp_path / "model"), "--tokenizer"]
    args += [str(tmp_path / "tokenizer"), "--data", str(data), "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--step", "5", "--model-name", "ckpt"])
    assert result.exit_code == 0, result.output
    written = pd.read_csv(out)
    direct = token_metric_rows(model, tokenizer, pairs, model_name="ckpt", step=5)
    np.testing.assert_allclose(written["score"], direct["score"], rtol=1e-5)
    assert list(written["task"]) == list(direct["task"])


def test_bad_pairs_file_names_the_lines(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"prompt": "a", "solution": "b"}\nnot json\n\n{"prompt": "a"}\n')
    with pytest.raises(BayesproxyError, match=r"line\(s\) 2, 4 \(2 in all\)"):
        read_pairs(path)
    with pytest.raises(BayesproxyError, match="does not exist"):
        read_pairs(tmp_path / "missing.jsonl")


def test_cli_refuses_a_model_name_that_is_not_a_directory(tmp_path):
    from bayesproxy.cli import tokens as _  # noqa: F401
    from bayesproxy.cli._app import app

    data = tmp_path / "pairs.jsonl"
    data.write_text('{"prompt": "a", "solution": "b"}\n')
    result = CliRunner().invoke(
        app, ["tokens", "--model", "gpt2", "--data", str(data), "--out", str(tmp_path / "o.csv")]
    )
    assert result.exit_code != 0
    assert isinstance(result.exception, BayesproxyError)
    assert "not a directory" in str(result.exception)
