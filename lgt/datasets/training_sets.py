"""Training data: LPT's SFT set and DPO pairs, MMFR's four-phase SFT rows, and the RL prompts.

Traces come in as `simple_cots` (O, X) and `long_cots` (O->O, O->X, X->O, X->X).
SFT keeps exactly `fraction` (rounded down) of the correct traces (O and O->O),
an equal quota per question drawn by length rank and the remainder filled, as
many X->O traces drawn the same way by added length and, optionally, the
consistent four-phase traces of a pass-rate subset. DPO pairs a correct trace
with a wrong one by LPT's rules. RL keeps the prompts of a uniform holdout of
the questions (MMFR's RL slice), which SFT and DPO leave out. Every draw is
seeded by the stage seed (and the question id), so reruns agree.
"""

from __future__ import annotations

import math
import random
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from fractions import Fraction
from typing import Any

import pyarrow as pa

from lgt.datasets.settings import DpoPairsSettings, RlPromptsSettings, SftDataSettings
from lgt.ids import content_id
from lgt.results import StageResult, timed
from schemas.traces import DPO_ARROW, RL_ARROW, SFT_ARROW
from schemas.vocab import ANSWER_FORMATS, AnswerFormat, Category, DpoRule, FourPhaseSubset, PassRateSubset, split_of

Trace = dict[str, Any]
_QUESTION_FIELDS = ("question_id", "image_id", "source", "stage", "family")


def target_text(thought: str, answer: str) -> str:
    """The SFT/DPO target: `<think> thought </think> <answer> answer </answer>`."""
    return f"<think> {thought.strip()} </think> <answer> {answer.strip()} </answer>"


def canonical_answer(gold_letter: str, gold_text: str, answer_format: str) -> str:
    """The gold written the way the question asked for it: "(B)", "B." or the option text."""
    if answer_format == AnswerFormat.PARENS:
        return f"({gold_letter})"
    if answer_format == AnswerFormat.DOT:
        return f"{gold_letter}."
    if answer_format == AnswerFormat.TEXT:
        return gold_text
    *first, last = map(repr, ANSWER_FORMATS)
    raise ValueError(f"unknown answer_format {answer_format!r}; expected {', '.join(first)} or {last}")


def weighted_sample(items: Iterable[Any], weights: Iterable[float], k: int, rng: random.Random) -> list[Any]:
    """k items without replacement, item i with weight w_i (Efraimidis–Spirakis), in draw order.

    Each item gets the key u ** (1 / w), u uniform; the k largest keys win, largest first,
    which is the same as drawing one at a time with probability proportional to weight.
    Keys are compared as log(u) / w: the same order, without u ** (1 / w) underflowing to
    0 (and tying) for small weights.
    """
    items, weights = list(items), list(weights)
    if len(items) != len(weights):
        raise ValueError(f"{len(items)} items but {len(weights)} weights")
    if any(not w > 0 for w in weights):
        raise ValueError("weights must be positive")
    keys = []
    for w in weights:
        u = rng.random()
        keys.append(math.log(u) / w if u > 0 else -math.inf)
    order = sorted(range(len(items)), key=lambda i: -keys[i])  # stable: equal keys keep input order
    return [items[i] for i in order[: max(k, 0)]]


# --- shared ---------------------------------------------------------------------


def _questions(questions: pa.Table) -> dict[str, dict[str, Any]]:
    return {q["question_id"]: q for q in questions.to_pylist()}


def _about(q: dict[str, Any]) -> dict[str, Any]:
    """The question columns every training row copies, its split and its prompts."""
    return {
        "split": split_of(q["stage"]),
        **{k: q[k] for k in _QUESTION_FIELDS},
        "system_prompt": q["system_prompt"],
        "user_prompt": q["user_prompt"],
    }


def _gold(q: dict[str, Any]) -> str:
    return canonical_answer(q["gold_letter"], q["gold_text"], q["answer_format"])


def share_of(fraction: float, n: int) -> int:
    """LPT's int(n * 0.1): the share of n, rounded down, the fraction taken as written in the recipe."""
    # 0.1 * 30 is 3.0000000000000004 and 0.29 * 100 is 28.999999999999996 in floats; Fraction(repr) is exact
    return math.floor(Fraction(repr(fraction)) * n)


def held_out_count(n_questions: int, rl_holdout: int | float) -> int:
    """How many of a shard's questions RL holds out: a fraction rounded down, or a whole count (at most all)."""
    if isinstance(rl_holdout, float):
        return share_of(rl_holdout, n_questions)
    return min(rl_holdout, n_questions)


def held_out_questions(question_ids: Iterable[str], settings: RlPromptsSettings) -> frozenset[str]:
    """The shard's questions held out for RL: a uniform sample, a pure function of (ids, rl_holdout, seed).

    Each id is ranked by a hash of (seed, id) and the first `held_out_count` are held out, so the sft, dpo
    and rl assets agree without reading each other, whatever order they read the questions in.
    """
    ids = sorted(set(question_ids))
    ranked = sorted(ids, key=lambda q: content_id("lgt-rl-holdout", settings.seed, q))
    return frozenset(ranked[: held_out_count(len(ids), settings.rl_holdout)])


def check_rl_disjoint(rl: pa.Table, **others: pa.Table) -> None:
    """Raise when an RL prompt's question also has SFT rows or DPO pairs (RL must be held out of both)."""
    rl_ids = set(rl.column("question_id").to_pylist())
    for name, table in others.items():
        shared = sorted(rl_ids.intersection(table.column("question_id").to_pylist()))
        if shared:
            raise ValueError(
                f"{len(shared)} question(s) are both RL prompts and in {name}, e.g. question_id {shared[0]}; "
                "RL must use only the questions held out of SFT and DPO (stages.rl_prompts.rl_holdout and seed)"
            )


def _traces(qs: dict[str, Any], simple: pa.Table, long: pa.Table, rejects: Counter) -> list[Trace]:
    """Simple CoTs and expansions in one shape: id, parent cot_id, category, thought, answer, call keys."""
    out = [
        {
            "id": r["cot_id"],
            "cot_id": r["cot_id"],
            "question_id": r["question_id"],
            "category": r["category"],
            "thought": r["thought"],
            "answer": r["answer"],
            "added_chars": 0,
            "call_keys": [r["call_key"]],
        }
        for r in simple.select(["cot_id", "question_id", "category", "thought", "answer", "call_key"]).to_pylist()
    ]
    out += [
        {"id": r["trace_id"], **r}
        for r in long.select(
            ["cot_id", "question_id", "category", "thought", "answer", "added_chars", "call_keys", "trace_id"]
        ).to_pylist()
    ]
    kept = [t for t in out if t["question_id"] in qs]
    if len(kept) < len(out):
        rejects["no_question"] += len(out) - len(kept)  # no prompt to train it with
    return kept


def _pass_rates(difficulty: pa.Table) -> dict[str, float]:
    return dict(zip(difficulty.column("question_id").to_pylist(), difficulty.column("pass_rate").to_pylist()))


def _in_subset(pass_rate: float, subset: str) -> bool:
    return (
        subset == PassRateSubset.ALL
        or (subset == PassRateSubset.BELOW_1 and pass_rate < 1)
        or (subset == PassRateSubset.ZERO and pass_rate == 0)
    )


# --- SFT ------------------------------------------------------------------------


def _sft_row(
    q: dict[str, Any], category: str, trace_id: str, thought: str, weight: float, call_keys: Sequence[str]
) -> dict[str, Any]:
    answer = _gold(q)  # every SFT trace is correct: train on the gold in the requested format
    return {
        "sft_id": content_id(category, trace_id),
        **_about(q),
        "category": category,
        "thought": thought.strip(),
        "answer": answer.strip(),
        "target": target_text(thought, answer),
        "weight": float(weight),
        "trace_id": trace_id,
        "call_keys": list(call_keys),
    }


def quota_draw(
    groups: dict[str, list[Trace]],
    total: int,
    length: Callable[[Trace], int],
    settings: SftDataSettings,
    tag: str,
) -> list[tuple[Trace, float]]:
    """Exactly min(total, traces) (trace, weight) pairs: an equal quota per question, then the remainder filled.

    LPT's length_weighted_subsample_df: the quota is total // questions (raised to `min_per_question` as far
    as the total allows), drawn within each question with weight rank_decay ** rank, the longest first; the
    gap to the total (questions with fewer traces than the quota, the division's remainder) is drawn from the
    traces left with the same weights. Where a raised quota does not fit, each round of it (every question's
    first draw, then its second, ...) goes to a uniform sample of the questions, so none gets two before
    every question had one.
    """
    groups = {qid: ts for qid, ts in groups.items() if ts}
    total = min(total, sum(map(len, groups.values())))
    if total <= 0:
        return []
    order: dict[str, list[tuple[Trace, float]]] = {}  # each question's traces in its draw order
    for qid in sorted(groups):
        ranked = sorted(groups[qid], key=lambda t: (-length(t), t["id"]))  # longest first, ties by id
        # floored so a very deep rank cannot underflow to a weight of 0
        weights = [max(settings.rank_decay**r, sys.float_info.min) for r in range(len(ranked))]
        order[qid] = weighted_sample(zip(ranked, weights), weights, len(ranked), random.Random(f"{tag}:{qid}"))
    quota = max(settings.min_per_question, total // len(order))
    drawn: list[tuple[Trace, float]] = []
    for rnd in range(quota):
        this_round = [order[qid][rnd] for qid in order if rnd < len(order[qid])]
        if len(this_round) > total - len(drawn):  # a raised quota that does not fit
            this_round = random.Random(f"{tag}:round:{rnd}").sample(this_round, total - len(drawn))
        drawn += this_round
        if len(drawn) == total:
            return drawn
    left = [pair for qid in order for pair in order[qid][quota:]]
    drawn += weighted_sample(left, [w for _, w in left], total - len(drawn), random.Random(f"{tag}:fill"))
    return drawn


def _four_phase(
    qs: dict[str, Any],
    four_phase: pa.Table,
    difficulty: pa.Table,
    subset: str,
    rejects: Counter,
    held_out: Collection[str],
) -> tuple[int, list[dict[str, Any]]]:
    """Consistent four-phase traces, then those of the pass-rate subset: (consistent count, kept rows)."""
    rows = sorted(
        four_phase.select(["id", "question_id", "thought", "is_consistent", "call_keys"]).to_pylist(),
        key=lambda r: r["id"],
    )
    consistent = [r for r in rows if r["is_consistent"]]
    rejects["four_phase_inconsistent"] += len(rows) - len(consistent)
    if subset == FourPhaseSubset.NONE:
        return len(consistent), []
    rates = _pass_rates(difficulty)
    kept = []
    for r in consistent:
        if r["question_id"] not in qs:
            rejects["no_question"] += 1
        elif r["question_id"] in held_out:
            rejects["rl_holdout"] += 1  # its question is an RL prompt
        elif subset != FourPhaseSubset.ALL and r["question_id"] not in rates:
            rejects["four_phase_no_difficulty"] += 1  # its pass rate is unknown, so its subset is too
        elif subset != FourPhaseSubset.ALL and not _in_subset(rates[r["question_id"]], subset):
            rejects[f"four_phase_not_{subset}"] += 1
        else:
            kept.append(r)
    return len(consistent), kept


@timed
def build_sft(
    questions: pa.Table,
    simple: pa.Table,
    long: pa.Table,
    four_phase: pa.Table,
    difficulty: pa.Table,
    settings: SftDataSettings,
    held_out: Collection[str] = frozenset(),
) -> StageResult:
    """LPT's SFT set (O ∪ O->O by length rank and quota, X->O to match) plus MMFR's four-phase traces.

    `held_out`: question ids kept for RL (`held_out_questions`); none of their traces is trained on.
    """
    rejects: Counter = Counter()
    qs = _questions(questions)
    pool: dict[str, list[Trace]] = defaultdict(list)
    x_to_o: dict[str, list[Trace]] = defaultdict(list)
    for t in _traces(qs, simple, long, rejects):
        if t["category"] not in (Category.O, Category.O_O, Category.X_O):
            continue
        if t["question_id"] in held_out:
            rejects["rl_holdout"] += 1  # its question is an RL prompt
        elif not t["thought"].strip():
            rejects["empty_thought"] += 1  # nothing to learn from, and the sft schema needs a thought
        elif t["category"] == Category.X_O:
            x_to_o[t["question_id"]].append(t)
        else:
            pool[t["question_id"]].append(t)

    n_pool, n_xo = sum(map(len, pool.values())), sum(map(len, x_to_o.values()))
    drawn = quota_draw(
        pool, share_of(settings.fraction, n_pool), lambda t: len(t["thought"]), settings, f"lgt-sft:{settings.seed}"
    )
    # LPT: as many X->O as pool traces (or all there are), ranked within a question by the thinking added
    xo_drawn = quota_draw(x_to_o, len(drawn), lambda t: t["added_chars"], settings, f"lgt-sft-x->o:{settings.seed}")
    n_consistent, fp = _four_phase(qs, four_phase, difficulty, settings.four_phase, rejects, held_out)

    rows = [
        _sft_row(qs[t["question_id"]], t["category"], t["id"], t["thought"], w, t["call_keys"])
        for t, w in drawn + xo_drawn
    ]
    rows += [
        _sft_row(qs[r["question_id"]], Category.FOUR_PHASE.value, r["id"], r["thought"], 1.0, r["call_keys"])
        for r in fp
    ]
    table = pa.Table.from_pylist(rows, schema=SFT_ARROW)
    funnel = {
        "pool": n_pool,
        "pool_drawn": len(drawn),
        "x_to_o": n_xo,
        "x_to_o_drawn": len(xo_drawn),
        "four_phase_consistent": n_consistent,
        "four_phase": len(fp),
        "rows": len(rows),
    }
    return StageResult(table, funnel, rejects, Counter(r["category"] for r in rows))


# --- DPO ------------------------------------------------------------------------

# rule -> the (chosen, rejected) pairs of one question, given its traces by category
_RULES: dict[DpoRule, Callable[[dict[str, list[Trace]]], list[tuple[Trace, Trace]]]] = {
    DpoRule.O_OVER_O_X: lambda g: [(o, e) for e in g[Category.O_X] for o in g[Category.O] if o["id"] == e["cot_id"]],
    # both expansions of the same simple CoT, so chosen and rejected share the wrong prefix (LPT groups by it)
    DpoRule.X_O_OVER_X_X: lambda g: [
        (c, r) for c in g[Category.X_O] for r in g[Category.X_X] if c["cot_id"] == r["cot_id"]
    ],
    DpoRule.X_O_OVER_X: lambda g: [(c, x) for c in g[Category.X_O] for x in g[Category.X] if x["id"] == c["cot_id"]],
    # empty unless the question has both
    DpoRule.O_OVER_X: lambda g: [(o, x) for o in g[Category.O] for x in g[Category.X]],
    DpoRule.O_OVER_X_X: lambda g: [(o, r) for o in g[Category.O] for r in g[Category.X_X]] if g[Category.X] else [],
}


def _pair_row(rule: str, q: dict[str, Any], chosen: Trace, rejected: Trace) -> dict[str, Any]:
    rule = str(rule)  # a plain string in the row, whether the caller passed a DpoRule or its value
    return {
        "pair_id": content_id(rule, chosen["id"], rejected["id"]),
        **_about(q),
        "rule": rule,
        "chosen": target_text(chosen["thought"], _gold(q)),  # correct: the gold in the requested format
        "rejected": target_text(rejected["thought"], rejected["answer"]),  # wrong: what it actually said
        "chosen_id": chosen["id"],
        "rejected_id": rejected["id"],
        "chosen_category": chosen["category"],
        "rejected_category": rejected["category"],
        "call_keys": [*chosen["call_keys"], *rejected["call_keys"]],
    }


def dpo_candidates(
    questions: pa.Table,
    simple: pa.Table,
    long: pa.Table,
    rules: Sequence[str],
    rejects: Counter | None = None,
    held_out: Collection[str] = frozenset(),
) -> list[dict[str, Any]]:
    """Every pair the rules make, before dedup: rules in the given order, each sorted by (chosen id, rejected id)."""
    rejects = Counter() if rejects is None else rejects
    qs = _questions(questions)
    groups: dict[str, dict[str, list[Trace]]] = defaultdict(lambda: defaultdict(list))
    for t in _traces(qs, simple, long, rejects):
        if t["question_id"] in held_out:
            rejects["rl_holdout"] += 1  # its question is an RL prompt
        else:
            groups[t["question_id"]][t["category"]].append(t)
    out = []
    for rule in rules:
        pairs = [(qid, c, r) for qid, g in groups.items() for c, r in _RULES[rule](g)]
        pairs.sort(key=lambda p: (p[1]["id"], p[2]["id"]))
        out += [_pair_row(rule, qs[qid], c, r) for qid, c, r in pairs]
    return out


def _dedupe(pairs: list[dict[str, Any]], column: str, rejects: Counter) -> list[dict[str, Any]]:
    """The first pair per (question, text in `column`); later ones count as duplicate_<column>."""
    seen: set[tuple[str, str]] = set()
    out = []
    for p in pairs:
        key = (p["question_id"], p[column])
        if key in seen:
            rejects[f"duplicate_{column}"] += 1
            continue
        seen.add(key)
        out.append(p)
    return out


@timed
def build_dpo(
    questions: pa.Table,
    simple: pa.Table,
    long: pa.Table,
    settings: DpoPairsSettings,
    held_out: Collection[str] = frozenset(),
) -> StageResult:
    """LPT's preference pairs; each chosen and each rejected text is used once per question, earlier rules first.

    `held_out`: question ids kept for RL (`held_out_questions`); none of their traces is paired.
    """
    rejects: Counter = Counter()
    candidates = dpo_candidates(questions, simple, long, settings.rules, rejects, held_out)
    distinct = [p for p in candidates if p["chosen"] != p["rejected"]]
    if len(distinct) < len(candidates):
        rejects["same_text"] += len(candidates) - len(distinct)  # nothing to prefer
    pairs = _dedupe(_dedupe(distinct, "chosen", rejects), "rejected", rejects)
    before, after = Counter(p["rule"] for p in candidates), Counter(p["rule"] for p in pairs)
    funnel = {
        "candidates": len(candidates),
        **{f"candidates {r}": before[r] for r in settings.rules},
        "pairs": len(pairs),
        **{f"pairs {r}": after[r] for r in settings.rules},
    }
    table = pa.Table.from_pylist(pairs, schema=DPO_ARROW)
    return StageResult(table, funnel, rejects, after)


# --- RL -------------------------------------------------------------------------


@timed
def build_rl(questions: pa.Table, difficulty: pa.Table, settings: RlPromptsSettings) -> StageResult:
    """One prompt per held-out question with its pass rate (NaN when unknown), kept by `stage.subset`.

    Only the questions `held_out_questions` draws become prompts (the rest train SFT and DPO), as MMFR
    holds out a uniform slice for RL.
    """
    rejects: Counter = Counter()
    rates = _pass_rates(difficulty)
    held_out = held_out_questions(questions.column("question_id").to_pylist(), settings)
    rows = []
    for q in questions.to_pylist():
        if q["question_id"] not in held_out:
            rejects["not_held_out"] += 1  # it trains SFT and DPO instead
            continue
        rate = rates.get(q["question_id"])
        if settings.subset != PassRateSubset.ALL and rate is None:
            rejects["no_pass_rate"] += 1  # cannot tell whether it belongs to the subset
            continue
        if rate is not None and not _in_subset(rate, settings.subset):
            rejects[f"not_{settings.subset}"] += 1
            continue
        rows.append(
            {
                **{k: q[k] for k in _QUESTION_FIELDS},
                "split": split_of(q["stage"]),
                "system_prompt": q["system_prompt"],
                "user_prompt": q["user_prompt"],
                "question": q["question"],
                "options": q["options"],
                "gold_letter": q["gold_letter"],
                "gold_text": q["gold_text"],
                "answer_format": q["answer_format"],
                "pass_rate": math.nan if rate is None else rate,
            }
        )
    table = pa.Table.from_pylist(rows, schema=RL_ARROW)
    with_rate = sum(q in rates for q in held_out)
    funnel = {
        "questions": questions.num_rows,
        "held_out": len(held_out),
        "with_pass_rate": with_rate,
        "rows": len(rows),
    }
    return StageResult(table, funnel, rejects, Counter(f"{r['stage']}/{r['family']}" for r in rows))
