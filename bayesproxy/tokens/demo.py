"""A synthetic language where token metrics rank checkpoints while the task is at chance.

The language: sentences of ``length`` words drawn from a sparse Markov chain, then ``=``
and an answer token, the sum of the word ids modulo ``n_answers``. Answering needs a
multi-step rule (add up every word), which a bigram model cannot represent, so the task
accuracy of every checkpoint stays at chance (``1 / n_answers``). The expert solutions are
held-out sentences with their answers; as the bigram model trains, its next-token
distribution over them sharpens, and the token metrics order the checkpoints by training
step long before (here: without) the task moving.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from bayesproxy.tokens.aggregate import task_scores
from bayesproxy.tokens.statistics import token_statistics

__all__ = ["SyntheticLanguage", "ranking_demo", "train_bigram"]


@dataclass(frozen=True)
class SyntheticLanguage:
    """Word sentences from a Markov chain, then ``=`` and a sum-modulo answer token.

    Token ids: words ``0 .. n_words-1``, ``=`` is ``n_words``, answers follow it.
    """

    transition: np.ndarray
    n_answers: int
    length: int

    @classmethod
    def create(
        cls, *, n_words: int = 24, n_answers: int = 4, length: int = 30, seed: int = 0
    ) -> SyntheticLanguage:
        """Draw a language whose word transitions are sparse (a few likely successors).

        Examples
        --------
        >>> lang = SyntheticLanguage.create(n_words=5, n_answers=3, length=4, seed=1)
        >>> lang.vocab_size
        9
        """
        rng = np.random.default_rng(seed)
        transition = rng.dirichlet(np.full(n_words, 0.2), size=n_words)
        return cls(transition=transition, n_answers=n_answers, length=length)

    @property
    def n_words(self) -> int:
        """Number of word tokens."""
        return self.transition.shape[0]

    @property
    def equals(self) -> int:
        """Token id of ``=``."""
        return self.n_words

    @property
    def vocab_size(self) -> int:
        """Words, ``=`` and the answer tokens."""
        return self.n_words + 1 + self.n_answers

    def sample(self, n: int, *, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` full sequences, shape (n, length + 2): words, ``=``, answer.

        Examples
        --------
        >>> lang = SyntheticLanguage.create(n_words=5, n_answers=3, length=4, seed=1)
        >>> seq = lang.sample(2, rng=np.random.default_rng(0))
        >>> bool(np.all(seq[:, -1] - 6 == seq[:, :4].sum(axis=1) % 3))
        True
        """
        words = np.empty((n, self.length), dtype=np.int64)
        words[:, 0] = rng.integers(0, self.n_words, size=n)
        cumulative = np.cumsum(self.transition, axis=1)
        for t in range(1, self.length):
            u = rng.random(n)[:, None]
            nxt = (u > cumulative[words[:, t - 1]]).sum(axis=1)
            words[:, t] = np.minimum(nxt, self.n_words - 1)
        answer = self.equals + 1 + words.sum(axis=1) % self.n_answers
        return np.column_stack([words, np.full(n, self.equals), answer])


def train_bigram(
    sequences: np.ndarray,
    *,
    vocab_size: int,
    checkpoints: Sequence[int],
    learning_rate: float = 0.5,
    batch_size: int = 64,
    seed: int = 0,
) -> dict[int, np.ndarray]:
    """Train a bigram logit table by minibatch SGD; snapshot it at the given steps.

    Parameters
    ----------
    sequences : numpy.ndarray of int, shape (n, length)
        Training sequences.
    vocab_size : int
        Number of token ids.
    checkpoints : sequence of int
        Steps at which to keep a copy of the table (0 = the random initialisation).
    learning_rate, batch_size, seed
        Plain SGD on mean next-token cross-entropy, from small random logits.

    Returns
    -------
    dict of int to numpy.ndarray
        Step -> table ``W`` of shape (vocab, vocab); ``W[a, b]`` is the logit of ``b`` after
        ``a``.

    Examples
    --------
    >>> seq = np.array([[0, 1, 0, 1, 0, 1]] * 4)
    >>> tables = train_bigram(seq, vocab_size=2, checkpoints=[0, 50], batch_size=2)
    >>> bool(tables[50][0, 1] > tables[50][0, 0])
    True
    """
    rng = np.random.default_rng(seed)
    # small random logits: an all-zero table would tie every token at rank 1
    table = rng.normal(scale=0.01, size=(vocab_size, vocab_size))
    prev, nxt = sequences[:, :-1].reshape(-1), sequences[:, 1:].reshape(-1)
    snapshots = {}
    wanted = sorted(set(int(c) for c in checkpoints))
    for step in range(wanted[-1] + 1):
        if step in wanted:
            snapshots[step] = table.copy()
        if step == wanted[-1]:
            break
        pick = rng.integers(0, prev.size, size=batch_size)
        a, b = prev[pick], nxt[pick]
        logits = table[a]
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(batch_size), b] -= 1.0  # gradient of cross-entropy w.r.t. the logits
        np.add.at(table, a, -learning_rate * p / batch_size)
    return snapshots


def _spearman(x: pd.Series, y: pd.Series) -> float:
    # a metric that did not move (or a tiny demo) has no defined correlation: NaN, quietly
    if np.ptp(y.to_numpy()) == 0 or np.ptp(x.to_numpy()) == 0:
        return float("nan")
    return float(sps.spearmanr(x, y).statistic)


def ranking_demo(
    *,
    checkpoints: Sequence[int] = (20, 50, 100, 200, 500, 1000, 2000),
    n_train: int = 400,
    n_eval: int = 400,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Token metrics and task accuracy of bigram checkpoints on the synthetic language.

    Parameters
    ----------
    checkpoints : sequence of int
        Training steps to evaluate.
    n_train, n_eval : int
        Training sequences, and held-out expert solutions / task questions.
    seed : int
        Seeds the language, the data and the training.

    Returns
    -------
    table : pandas.DataFrame
        One row per checkpoint: ``step``, ``task_accuracy`` (argmax over the answer tokens
        after ``=``), ``chance`` and one column per token metric (``tokens.<stat>.<w>``).
    ranking : pandas.DataFrame
        One row per column of ``table``: Spearman correlation with the step, signed so
        that +1 means "orders the checkpoints by training" (metrics where lower is better
        are negated).

    Examples
    --------
    >>> table, ranking = ranking_demo(checkpoints=(10, 100, 1000), n_train=100, n_eval=100)
    >>> float(ranking.loc["tokens.cross_entropy.uniform", "spearman"])
    1.0
    """
    lang = SyntheticLanguage.create(seed=seed)
    rng = np.random.default_rng(seed + 1)
    train, held_out = lang.sample(n_train, rng=rng), lang.sample(n_eval, rng=rng)
    tables = train_bigram(train, vocab_size=lang.vocab_size, checkpoints=checkpoints, seed=seed + 2)
    expert_ids = held_out[:, 1:]
    answers = np.arange(lang.equals + 1, lang.vocab_size)
    rows, directions = [], {}
    for step in sorted(tables):
        logits = tables[step][held_out[:, :-1]]  # (n_eval, tokens, vocab)
        # the task: after '=', is the most likely answer token the right one?
        guess = answers[np.argmax(logits[:, -1, answers], axis=1)]
        frame = task_scores(token_statistics(logits, expert_ids), expert_ids=expert_ids)
        directions = dict(zip(frame["task"], frame["higher_is_better"], strict=True))
        rows.append(
            {
                "step": step,
                "task_accuracy": float(np.mean(guess == held_out[:, -1])),
                "chance": 1.0 / lang.n_answers,
                **dict(zip(frame["task"], frame["score"], strict=True)),
            }
        )
    table = pd.DataFrame(rows)
    directions["task_accuracy"] = True
    ranking = pd.DataFrame(
        {
            "spearman": {
                name: (1 if up else -1) * _spearman(table["step"], table[name])
                for name, up in directions.items()
            }
        }
    )
    return table, ranking
