"""Chance levels (score floors) of tasks, and the rules that resolve them.

A task's chance level is the score a model that guesses at random gets: 0.25 for 4-way
multiple choice, 0.5 for binary choice, 0 for generation scored by exact match and for
metrics with no floor (losses). Resolution order, first hit wins:

1. the user's mapping (``chance={"task": level}``), by full task name;
2. a ``chance`` column of the table (one value per task);
3. the built-in list :data:`BUILTIN_CHANCE`, looked up by the full task name, then by
   ``task/subtask`` without qualifiers, then by the subtask, then by the base task;
4. 0 (logged), for accuracy tasks the list does not know.

Metric tasks (losses, bits per byte, ...) always have chance 0.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping

from bayesproxy.errors import TableError

__all__ = ["BUILTIN_CHANCE", "METRIC_NAMES", "builtin_chance", "is_metric_name", "resolve_chance"]

log = logging.getLogger(__name__)

# Common benchmarks: the floor a random guesser reaches on the usual scoring.
BUILTIN_CHANCE: dict[str, float] = {
    # multiple choice, 4-way
    "mmlu": 0.25,
    "mmlu_stem": 0.25,
    "mmlu_humanities": 0.25,
    "mmlu_social_sciences": 0.25,
    "mmlu_other": 0.25,
    "arc_challenge": 0.25,
    "arc_easy": 0.25,
    "hellaswag": 0.25,
    "openbookqa": 0.25,
    "sciq": 0.25,
    "logiqa": 0.25,
    "mathqa": 0.2,
    "parsinlu_qa": 0.25,
    "gpqa": 0.25,
    "lbv2_gpqa": 0.25,
    "race": 0.25,
    "medmcqa": 0.25,
    "truthfulqa_mc1": 0.25,
    # other n-way choice
    "mmlu_pro": 0.1,
    "lbv2_mmlu_pro": 0.1,
    "csqa": 0.2,
    "commonsense_qa": 0.2,
    "socialiqa": 1 / 3,
    "siqa": 1 / 3,
    "lbv2_bbh": 0.2624,
    "lbv2_musr": 0.3444,
    # binary choice
    "winogrande": 0.5,
    "xwinograd": 0.5,
    "piqa": 0.5,
    "boolq": 0.5,
    "copa": 0.5,
    "wsc": 0.5,
    "wsc273": 0.5,
    "rte": 0.5,
    "wic": 0.5,
    "cb": 1 / 3,
    "anli_r1": 1 / 3,
    "anli_r2": 1 / 3,
    "anli_r3": 1 / 3,
    # generation / exact match / completion: no floor
    "lambada": 0.0,
    "lambada_openai": 0.0,
    "lambada_standard": 0.0,
    "gsm8k": 0.0,
    "gsm8k_cot": 0.0,
    "math": 0.0,
    "lbv2_math_hard": 0.0,
    "lbv2_ifeval": 0.0,
    "humaneval": 0.0,
    "mbpp": 0.0,
    "triviaqa": 0.0,
    "naturalqs": 0.0,
    "word_unscrambling": 0.0,
    "ipa_transliterate": 0.0,
    "arithmetic_2da": 0.0,
    "arithmetic_2dm": 0.0,
    "arithmetic_3da": 0.0,
    "arithmetic_3ds": 0.0,
    "arithmetic_4da": 0.0,
    "arithmetic_4ds": 0.0,
    "arithmetic_5da": 0.0,
    "arithmetic_5ds": 0.0,
    "arithmetic_2ds": 0.0,
    "arithmetic_1dc": 0.0,
    # BIG-bench Hard subtasks (lm-eval's multiple-choice scoring)
    "boolean_expressions": 0.5,
    "causal_judgement": 0.5,
    "date_understanding": 1 / 6,
    "disambiguation_qa": 1 / 3,
    "dyck_languages": 0.0,
    "formal_fallacies": 0.5,
    "geometric_shapes": 1 / 9,
    "hyperbaton": 0.5,
    "logical_deduction_five_objects": 0.2,
    "logical_deduction_seven_objects": 1 / 7,
    "logical_deduction_three_objects": 1 / 3,
    "movie_recommendation": 0.2,
    "multistep_arithmetic_two": 0.0,
    "navigate": 0.5,
    "object_counting": 0.0,
    "penguins_in_a_table": 0.2,
    "reasoning_about_colored_objects": 1 / 18,
    "ruin_names": 0.25,
    "salient_translation_error_detection": 1 / 6,
    "snarks": 0.5,
    "sports_understanding": 0.5,
    "temporal_sequences": 0.25,
    "tracking_shuffled_objects_five_objects": 0.2,
    "tracking_shuffled_objects_seven_objects": 1 / 7,
    "tracking_shuffled_objects_three_objects": 1 / 3,
    "web_of_lies": 0.5,
    "word_sorting": 0.0,
}

# Metric names that are not fractions in [0, 1] (losses, perplexities, ranks).
METRIC_NAMES: frozenset[str] = frozenset(
    {
        "loss",
        "ce_loss",
        "cross_entropy",
        "bpb",
        "bits_per_byte",
        "perplexity",
        "ppl",
        "word_perplexity",
        "byte_perplexity",
        "token_perplexity",
        "rank",
        "mean_rank",
        "nll",
    }
)

# task families named by prefix (MMLU subjects in the older harness, CrowS-Pairs subsets)
_PREFIX_CHANCE = (("hendryckstest-", 0.25), ("mmlu_", 0.25), ("crows_pairs", 0.5))
_SPLIT = re.compile(r"[/:|]")


def is_metric_name(name: str) -> bool:
    """Whether a metric name denotes a non-fraction metric (loss, perplexity, rank).

    Examples
    --------
    >>> is_metric_name("bits_per_byte"), is_metric_name("acc")
    (True, False)
    """
    return str(name).strip().lower().split(",")[0] in METRIC_NAMES


def builtin_chance(task: str) -> float | None:
    """Chance level of a task from the built-in list, or ``None`` when unknown.

    The full name is tried first, then its parts: ``"bbh_fewshot/snarks:acc"`` finds
    ``snarks``; ``"mmlu:mc:acc"`` finds ``mmlu``; a leading ``"leaderboard_"``, ``"bbh_"``
    or ``"mmlu_"`` prefix is also tried without it.

    Examples
    --------
    >>> builtin_chance("bbh_fewshot/snarks")
    0.5
    >>> builtin_chance("arc_easy:rc:acc_len_norm:val")
    0.25
    >>> builtin_chance("my_private_task") is None
    True
    """
    name = str(task).strip().lower()
    if name in BUILTIN_CHANCE:
        return BUILTIN_CHANCE[name]
    for prefix, level in _PREFIX_CHANCE:
        if name.startswith(prefix):
            return level
    parts = [p for p in _SPLIT.split(name) if p]
    # subtask (second part) before the base task: BBH subtasks have their own floors
    for part in [*parts[1:2], *parts[:1]]:
        for candidate in (part, *(part.removeprefix(p) for p in ("leaderboard_", "bbh_"))):
            if candidate in BUILTIN_CHANCE:
                return BUILTIN_CHANCE[candidate]
    return None


def resolve_chance(
    tasks: Iterable[str],
    *,
    kinds: Mapping[str, str],
    user: Mapping[str, float] | None = None,
    column: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Resolve each task's chance level by the module's rules.

    Parameters
    ----------
    tasks : iterable of str
        Task names.
    kinds : mapping
        Task -> ``"accuracy"`` or ``"metric"``; metrics get 0.
    user : mapping, optional
        User-given levels, highest priority.
    column : mapping, optional
        Levels read from the table's ``chance`` column.

    Returns
    -------
    dict
        Task -> chance level in [0, 1).

    Raises
    ------
    TableError
        A given level lies outside [0, 1).

    Examples
    --------
    >>> resolve_chance(["mmlu", "lm_loss", "mine"], kinds={"mmlu": "accuracy",
    ...                "lm_loss": "metric", "mine": "accuracy"}, user={"mine": 0.5})
    {'mmlu': 0.25, 'lm_loss': 0.0, 'mine': 0.5}
    """
    user = dict(user or {})
    column = dict(column or {})
    out: dict[str, float] = {}
    unknown = []
    for task in tasks:
        if kinds.get(task, "accuracy") == "metric":
            level: float | None = 0.0
        elif task in user:
            level = float(user[task])
            source = "chance="
        elif task in column:
            level = float(column[task])
            source = "the 'chance' column"
        else:
            level = builtin_chance(task)
            source = "the built-in list"
            if level is None:
                unknown.append(task)
                level = 0.0
        if not 0.0 <= level < 1.0:
            raise TableError(
                f"chance level of task {task!r} from {source} is {level}, outside [0, 1)."
                "\nHint: give chance levels as fractions, e.g. 0.25 for 4-way choice."
            )
        out[task] = level
    if unknown:
        log.info(
            "no chance level known for %d task(s) (%s); using 0. Pass chance={...} to set them.",
            len(unknown),
            ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else ""),
        )
    return out
