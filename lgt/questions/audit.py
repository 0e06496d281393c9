"""Bias audit: can a question's gold be guessed without the image?

For each family, the gold distribution over option values, and the accuracy of blind baselines that see only
the question and its options. Each baseline reads one feature of an option and picks the option whose feature
value was gold most often in that family (fitted on the same questions: what a model trained on them could
learn; each question is scored leaving itself out). Features:

- `text`: the option's text ("the same number of each", "to the left", "1");
- `mention`: where the option's words first occur in the question ("more red squares" after "Are there more
  red squares or more blue circles" is `first`), or `absent`;
- `number_rank`: the option's rank among the offered numbers, when every option is a whole number;
- `length_rank`: the option's rank by length in characters.

Ties between options count as a fair coin (1/k each). With four options chance is 25 %; the issue's goal is
that no family with 100+ questions lets a blind baseline reach 35 %.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

BLIND_LIMIT = 0.35  # the goal for families with at least MIN_QUESTIONS questions
MIN_QUESTIONS = 100

_WORDS = re.compile(r"[a-z0-9]+")


def _norm(text: str) -> str:
    return " ".join(_WORDS.findall(text.lower()))


def _mentions(question: str, options: Sequence[str]) -> list[str]:
    """Each option's order of first mention in the question (its words, less a leading "more"), or absent."""
    q = f" {_norm(question)} "
    at = []
    for o in options:
        words = _norm(o).removeprefix("more ").strip()
        at.append(q.find(f" {words} ") if words and f" {words} " in q else None)
    found = sorted({a for a in at if a is not None})
    return ["absent" if a is None else f"mention {found.index(a) + 1}" for a in at]


def _ranks(values: Sequence[float]) -> list[str]:
    order = sorted(set(values))
    return [f"rank {order.index(v)} of {len(order)}" for v in values]


def _features(question: str, options: Sequence[str]) -> dict[str, list[str]]:
    out = {
        "text": [_norm(o) for o in options],
        "mention": _mentions(question, options),
        "length_rank": _ranks([len(o) for o in options]),
    }
    if all(o.strip().isdigit() for o in options):
        out["number_rank"] = _ranks([int(o) for o in options])
    return out


@dataclass
class FamilyAudit:
    family: str
    questions: int
    gold_values: list[tuple[str, int]]  # the most frequent gold texts, with counts
    blind: dict[str, float] = field(default_factory=dict)  # feature -> accuracy of its blind baseline

    @property
    def best(self) -> tuple[str, float]:
        return max(self.blind.items(), key=lambda kv: kv[1]) if self.blind else ("", 0.0)

    @property
    def over_limit(self) -> bool:
        return self.questions >= MIN_QUESTIONS and self.best[1] > BLIND_LIMIT


def _blind_accuracy(items: list[tuple[list[str], int]]) -> float:
    """items: (feature value per option, gold index). Each question is scored by value -> gold rates fitted on
    the OTHER questions (leave one out), so a value seen once does not predict itself; an unseen value gets
    chance, 1/k."""
    gold, offered = Counter(), Counter()
    for values, g in items:
        offered.update(set(values))
        gold[values[g]] += 1
    hits = 0.0
    for values, g in items:
        k = len(values)
        # minus this question's own offer and win; plus one pseudo-question at chance, which smooths rare values
        scores = [(gold[v] - (values[g] == v) + 1 / k) / offered[v] for v in values]
        best = [i for i, s in enumerate(scores) if s == max(scores)]
        hits += (g in best) / len(best)
    return hits / len(items) if items else 0.0


def _options(r: dict) -> list[str]:
    """The options with the gold first: from a stage's item row (answer, distractors) or a formatted question
    row (options, gold_text)."""
    if "answer" in r:
        return [r["answer"], *r["distractors"]]
    return [r["gold_text"], *[o for o in r["options"] if o != r["gold_text"]]]


def audit(rows: Sequence[dict]) -> list[FamilyAudit]:
    """One audit per family, from question rows with `family`, `question`, and `answer` and `distractors` (or
    `options` and `gold_text`).

    The gold is the option equal to `answer`; options are [answer, *distractors] (order does not matter: no
    feature reads positions).
    """
    by_family: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_family[r["family"]].append(r)
    out = []
    for family, rs in sorted(by_family.items()):
        per_feature: dict[str, list[tuple[list[str], int]]] = defaultdict(list)
        missing: Counter = Counter()  # summed 1/k over the questions a feature does not apply to
        for r in rs:
            options = _options(r)
            feats = _features(r["question"], options)
            for name in ("number_rank",):
                if name not in feats:
                    missing[name] += 1 / len(options)
            for name, values in feats.items():
                per_feature[name].append((values, 0))
        fa = FamilyAudit(family, len(rs), Counter(_norm(_options(r)[0]) for r in rs).most_common(5))
        # a feature that exists for only some questions (number_rank) guesses at chance on the others
        fa.blind = {
            name: round((_blind_accuracy(items) * len(items) + missing[name]) / len(rs), 4)
            for name, items in sorted(per_feature.items())
        }
        out.append(fa)
    return out


def audit_table(audits: Sequence[FamilyAudit], solver: dict[str, tuple[int, int]] | None = None) -> str:
    """Markdown: one row per family, the best blind baseline, and the most frequent gold values; with `solver`
    (family -> (right, attempts) of the small solver reading the text alone), its accuracy too."""
    head = "| family | questions | best blind baseline | accuracy |"
    rule = "|---|---:|---|---:|"
    if solver is not None:
        head, rule = head + " small solver, text only |", rule + "---:|"
    lines = [head + " most frequent golds |", rule + "---|"]
    for a in audits:
        name, acc = a.best
        flag = " **over 35 %**" if a.over_limit else ""
        golds = ", ".join(f"{v} ({n})" for v, n in a.gold_values[:3])
        row = f"| {a.family} | {a.questions} | {name} | {acc:.1%}{flag} |"
        if solver is not None:
            right, n = solver.get(a.family, (0, 0))
            over = " **over 35 %**" if n >= MIN_QUESTIONS and right / n > BLIND_LIMIT else ""
            row += f" {right / n:.1%} of {n}{over} |" if n else " – |"
        lines.append(f"{row} {golds} |")
    return "\n".join(lines)


def solver_accuracy(questions: Sequence[dict], difficulty: Sequence[dict]) -> dict[str, tuple[int, int]]:
    """family -> (right, attempts) of the difficulty stage's blind pass (`blind_choice`) over these questions."""
    gold = {q["question_id"]: q["gold_letter"] for q in questions}
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for d in difficulty:
        if d.get("blind_choice") is not None and d["question_id"] in gold:
            out[d["family"]][0] += d["blind_choice"] == gold[d["question_id"]]
            out[d["family"]][1] += 1
    return {f: (r, n) for f, (r, n) in out.items()}


def bias_audits(questions: Any, difficulty: Any = None) -> dict[int, str]:
    """Synthesis stage -> the audit table of its questions (pyarrow tables: `questions`, and `difficulty` for the
    small solver's text-only pass where it ran)."""
    by_stage: dict[int, list[dict]] = defaultdict(list)
    for r in questions.to_pylist():
        by_stage[r["stage"]].append(r)
    rated = difficulty.to_pylist() if difficulty is not None and "blind_choice" in difficulty.column_names else []
    out = {}
    for stage, rs in sorted(by_stage.items()):
        solver = solver_accuracy(rs, rated) if any(d.get("blind_choice") is not None for d in rated) else None
        out[stage] = audit_table(audit(rs), solver)
    return out
