"""Benchmark suites read from local files into BENCHMARK_ARROW rows: the published layouts and any MCQ file.

One preset per published layout (checked against each benchmark's card or eval script):

    cv_bench       nyu-visionx/CV-Bench: test.parquet, or test_2d.parquet + test_3d.parquet; `image` (HF struct),
                   `question`, `choices` (list), `answer` "(A)", `task` (Count/Relation/Depth/Distance), `idx`
    vstar          craigwu/vstar_bench: test_questions.jsonl next to direct_attributes/, relative_position/;
                   `text` = question + "(A) ...\\n(B) ..." + an instruction line, `label` letter, `category`,
                   `question_id`, `image` (relative path)
    mmvp           MMVP: Questions.csv (Index, Question, Options "(a) Open (b) Closed", Correct Answer "(a)"),
                   images "MMVP Images/<Index>.jpg"; it has no task column, so every row's task is "mmvp"
    mmstar         Lin-Chen/MMStar: mmstar.parquet; `question` holds the options ("Options: A: ..., B: ..."),
                   `image` bytes, `answer` letter, `category` (the task), `index`
    mme_realworld  MME-RealWorld: a JSON list; `Text`, `Answer choices` ["(A) ...", ...], `Ground truth` letter,
                   `Image` (relative path), `Category` (the task), `Question_id`
    mmlu_pro       TIGER-Lab/MMLU-Pro: test-*.parquet (or data/test-*.parquet); `options` padded with "N/A"
                   (dropped, as MMLU-Pro's own eval does), `answer` letter, `category`, `question_id`; text only

Kind `mcq` has no preset: `columns` maps any parquet, JSON, JSONL, CSV or TSV file. `spec.columns` overrides any
preset field. Options are a list column (items lettered "(A) x" lose the letter), a text column of lettered
options, or `option_columns` (MMBench's A..D; trailing empty columns are absent options). Where the options
column is the question column, the question is the text before the options. A null image under `mcq` makes a
text question; the published vision layouts need an image in every row.

A bad row (gold not among the options, fewer than 2 options, a missing or undecodable image, an image path
outside image_root, a repeated id) is returned in `SuiteLoad.skipped`, never dropped silently. Only a missing
file or column, or a suite where no row loads, raises.

Sampling (`max_questions`): the quota of each task is its share of max_questions by the largest-remainder
method (see `stratified_quotas`); within a task, rows are ranked by a hash of (seed, question_id), so the draw
does not depend on file order. A row whose image fails is reported and the next ranked row of its task takes
its place. Text problems are reported for every row; image problems only for the rows the draw reached.
The output keeps file order.
"""

from __future__ import annotations

import ast
import base64
import binascii
import io
import json
import math
import re
import warnings
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from numbers import Integral
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from lgt.evaluation.prompts import mcq_prompts
from lgt.evaluation.settings import FileSuite, SuiteColumns
from lgt.ids import content_id
from lgt.images.validate import image_id_of, pil_error
from schemas.evaluation import BENCHMARK_ARROW, EVAL_LETTERS


@dataclass
class SuiteLoad:
    table: pa.Table  # BENCHMARK_ARROW rows, in file order
    skipped: list[dict[str, Any]] = field(default_factory=list)  # {"file", "row", "field", "reason"}


class _RowError(Exception):
    """One row cannot be used; `field` names the file's column (or "image", "record")."""

    def __init__(self, field: str, reason: str):
        super().__init__(reason)
        self.field, self.reason = field, reason


# --- layouts ----------------------------------------------------------------------------------------------


def _files(path: Path, suite: str, patterns: Sequence[str], single: bool = False) -> list[Path]:
    """The file itself, or the files of the first pattern that matches inside the folder."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"suite {suite}: {path} does not exist")
    for pattern in patterns:
        found = sorted(p for p in path.glob(pattern) if p.is_file())
        if single and len(found) > 1:
            raise ValueError(f"suite {suite}: {len(found)} files match {pattern} in {path}; name one as the path")
        if found:
            return found
    raise FileNotFoundError(f"suite {suite}: no {' or '.join(patterns)} in {path}")


@dataclass(frozen=True)
class Layout:
    columns: SuiteColumns
    patterns: tuple[str, ...] = ()  # the files inside a folder path; () = the path must be a file
    single: bool = False  # the folder must hold exactly one matching file
    image_required: bool = True
    padding: frozenset[str] = frozenset()  # option texts that only pad the list (MMLU-Pro's "N/A")
    image_path: Callable[[dict[str, Any]], Any] | None = None  # where the image is when no column says
    needs: tuple[str, ...] = ()  # columns image_path reads


PRESETS: dict[str, Layout] = {
    "cv_bench": Layout(
        SuiteColumns(question="question", options="choices", answer="answer", image="image", task="task", id="idx"),
        patterns=("test.parquet", "test_[23]d.parquet"),
    ),
    "vstar": Layout(
        SuiteColumns(question="text", options="text", answer="label", image="image", task="category", id="question_id"),
        patterns=("test_questions.jsonl",),
    ),
    "mmvp": Layout(
        SuiteColumns(question="Question", options="Options", answer="Correct Answer", id="Index"),
        patterns=("Questions.csv",),
        image_path=lambda rec: f"MMVP Images/{str(rec['Index']).strip()}.jpg",
        needs=("Index",),
    ),
    "mmstar": Layout(
        SuiteColumns(
            question="question", options="question", answer="answer", image="image", task="category", id="index"
        ),
        patterns=("mmstar.parquet", "*.parquet"),
        single=True,
    ),
    "mme_realworld": Layout(
        SuiteColumns(
            question="Text",
            options="Answer choices",
            answer="Ground truth",
            image="Image",
            task="Category",
            id="Question_id",
        ),
        patterns=("*.json",),
        single=True,
    ),
    "mmlu_pro": Layout(
        SuiteColumns(question="question", options="options", answer="answer", task="category", id="question_id"),
        patterns=("test-*.parquet", "data/test-*.parquet", "test.parquet"),
        image_required=False,
        padding=frozenset({"N/A"}),
    ),
}


def suite_columns(spec: FileSuite) -> SuiteColumns:
    """The preset's columns with every field `spec.columns` sets put over them."""
    given = spec.columns.model_dump(exclude_none=True) if spec.columns else {}
    if "options" in given and "option_columns" in given:
        raise ValueError(f"suite {spec.name}: set options or option_columns, not both")
    base = PRESETS[spec.kind].columns.model_dump() if spec.kind in PRESETS else {}
    if given.get("options"):  # one way of giving options replaces the preset's other way
        base["option_columns"] = None
    if given.get("option_columns"):
        base["options"] = None
    cols = SuiteColumns(**(base | given))
    if spec.kind == "mcq":
        if spec.columns is None:
            raise ValueError(f"suite {spec.name}: kind mcq has no preset; `columns` must name the file's columns")
        missing = [f for f in ("question", "answer") if getattr(cols, f) is None]
        if cols.options is None and not cols.option_columns:
            missing.append("options or option_columns")
        if missing:
            raise ValueError(f"suite {spec.name}: kind mcq needs columns {', '.join(missing)}")
    return cols


# --- reading files ----------------------------------------------------------------------------------------

Record = tuple[int, dict[str, Any] | None, _RowError | None]  # (row, record, or why the record is unreadable)


def _check_columns(path: Path, suite: str, wanted: dict[str, str], have: Sequence[str]) -> None:
    for what, col in wanted.items():
        if col not in have:
            raise ValueError(f"suite {suite}: {path} has no column {col!r} (the {what}); its columns: {list(have)}")


def _read(path: Path, suite: str, wanted: dict[str, str]) -> list[Record]:
    """Every record of one file, as (row from 0, dict); a missing file or column raises."""
    if not path.is_file():
        raise FileNotFoundError(
            f"suite {suite}: {path} " + ("is a folder, not a file" if path.is_dir() else "does not exist")
        )
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        names = pq.read_schema(path).names
        _check_columns(path, suite, wanted, names)
        table = pq.read_table(path, columns=sorted(set(wanted.values())))  # leave unused (image) columns unread
        return [(i, rec, None) for i, rec in enumerate(table.to_pylist())]
    if suffix in (".csv", ".tsv"):
        # every cell as text ("" when empty): ids and letters keep their spelling
        df = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype=str, keep_default_na=False)
        _check_columns(path, suite, wanted, list(df.columns))
        return [(i, rec, None) for i, rec in enumerate(df.to_dict("records"))]
    if suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, list):
            raise ValueError(f"suite {suite}: {path} must hold a JSON list of question objects")
        out: list[Record] = [
            (i, rec, None) if isinstance(rec, dict) else (i, None, _RowError("record", "not a JSON object"))
            for i, rec in enumerate(data)
        ]
    elif suffix in (".jsonl", ".ndjson"):
        out = []
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                out.append((i, None, _RowError("record", f"not valid JSON: {e.msg} at column {e.colno}")))
                continue
            ok = isinstance(rec, dict)
            out.append((i, rec, None) if ok else (i, None, _RowError("record", "not a JSON object")))
    else:
        raise ValueError(f"suite {suite}: {path}: unknown format {suffix!r}; use parquet, json, jsonl, csv or tsv")
    have = list(dict.fromkeys(k for _, rec, _ in out if rec is not None for k in rec))
    _check_columns(path, suite, wanted, have)
    return out


# --- fields -----------------------------------------------------------------------------------------------

# An option letter as benchmarks write it: "(A) x", "A: x", "A. x", "A) x".
_MARKERS = (r"\({}\)\s*", r"{}:\s*", r"{}\.\s+", r"{}\)\s+")
_BOUNDARY = r"(?:^|(?<=[\s,;]))"  # a marker starts the text or follows a space, comma or semicolon
_OPTIONS_LABEL = re.compile(r"(?:options|choices)\s*:?\s*$", re.IGNORECASE)
_LETTER = re.compile(r"^\(?([A-Ja-j])\)?[.:]?$")
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


def _missing(value: Any) -> bool:
    return (
        value is None
        or (isinstance(value, float) and math.isnan(value))
        or (isinstance(value, str | bytes) and not value.strip())
    )


def _as_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 3.0 from a float column is the id 3
    return str(value).strip()


def _text(rec: dict[str, Any], col: str) -> str:
    if _missing(rec.get(col)):
        raise _RowError(col, "empty")
    return _as_text(rec[col])


def split_lettered(text: str) -> tuple[str, list[str]]:
    """(text before the options, option texts) of a text with lettered options: "Q? (A) x (B) y", "A: x, B: y".

    Letters run A, B, C... in one style and case; the run with the most options wins, then the one that starts
    last, since a question may name "(A)" before its options do (a lone "(A)" is a run of one, which the caller
    reports as too few options). The last option ends at its line's end: an instruction line may follow it (V*).
    A trailing "Options:" label leaves the question.
    """
    best: list[re.Match] | None = None
    for marker in _MARKERS:
        for letters in (EVAL_LETTERS, EVAL_LETTERS.lower()):
            pats = [re.compile(_BOUNDARY + marker.format(ch)) for ch in letters]
            for first in pats[0].finditer(text):
                found = [first]
                for pat in pats[1:]:
                    m = pat.search(text, found[-1].end())
                    if m is None:
                        break
                    found.append(m)
                if best is None or (len(found), first.start()) > (len(best), best[0].start()):
                    best = found
    if best is None:
        raise ValueError("no lettered options like '(A) ... (B) ...' or 'A: ..., B: ...'")
    options = []
    for i, m in enumerate(best):
        last = i + 1 == len(best)
        seg = text[m.end() : len(text) if last else best[i + 1].start()].strip()
        if last:
            seg = seg.split("\n", 1)[0]
        options.append(seg.strip().rstrip(",;").strip())
    question = _OPTIONS_LABEL.sub("", text[: best[0].start()].strip()).strip()
    return question, options


def strip_letters(items: Sequence[str]) -> list[str]:
    """List items without their letters, when every item starts with its own: ["(A) x", "(B) y"] -> ["x", "y"]."""
    items = [str(it) for it in items]
    if len(items) <= len(EVAL_LETTERS):
        for marker in _MARKERS:
            for letters in (EVAL_LETTERS, EVAL_LETTERS.lower()):
                pats = [re.compile(r"^\s*" + marker.format(ch)) for ch in letters[: len(items)]]
                if items and all(p.match(it) for p, it in zip(pats, items)):
                    return [p.sub("", it, count=1).strip() for p, it in zip(pats, items)]
    return [it.strip() for it in items]


def gold_index(value: Any) -> int:
    """The gold as a 0-based option index: from a letter ("B", "(B)", "b", "B.") or an index (1, "1")."""
    if isinstance(value, Integral) and not isinstance(value, bool) and value >= 0:
        return int(value)
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    if isinstance(value, str):
        s = value.strip()
        m = _LETTER.match(s)
        if m:
            return EVAL_LETTERS.index(m.group(1).upper())
        if s.isdigit():
            return int(s)
    raise ValueError(f"{value!r} is neither an option letter (A-J, '(B)') nor a 0-based index")


def _listed(value: Any) -> list[Any] | None:
    """A list column's value; a CSV cell may hold the list as JSON or a Python literal."""
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, str) and value.strip().startswith("["):
        for parse in (json.loads, ast.literal_eval):
            try:
                parsed = parse(value)
            except (ValueError, SyntaxError):
                continue
            if isinstance(parsed, list):
                return parsed
    return None


def _question_and_options(rec: dict[str, Any], cols: SuiteColumns, padding: frozenset[str]):
    """(question, options, gold index) of one record."""
    question = _text(rec, cols.question)
    if cols.option_columns:
        values = ["" if _missing(rec.get(c)) else _as_text(rec[c]) for c in cols.option_columns]
        while values and not values[-1]:  # MMBench: a 2-option question leaves C and D empty
            values.pop()
        for c, v in zip(cols.option_columns, values):
            if not v:
                raise _RowError(c, "empty option before a filled one")
        options = values
    else:
        raw = rec.get(cols.options)
        listed = _listed(raw)
        if listed is not None:
            options = strip_letters(["" if _missing(o) else _as_text(o) for o in listed])
        elif isinstance(raw, str) and raw.strip():
            try:
                lead, options = split_lettered(raw)
            except ValueError as e:
                raise _RowError(cols.options, str(e)) from None
            if cols.options == cols.question:  # the layout put the options inside the question
                question = lead
        else:
            raise _RowError(cols.options, f"no options (got {type(raw).__name__})")
    if _missing(rec.get(cols.answer)):
        raise _RowError(cols.answer, "empty")
    try:
        gold = gold_index(rec[cols.answer])
    except ValueError as e:
        raise _RowError(cols.answer, str(e)) from None
    if gold >= len(options):
        raise _RowError(cols.answer, f"gold {rec[cols.answer]!r} names no option; there are {len(options)}")
    if padding:  # drop padding options; the gold keeps pointing at its option
        if options[gold] in padding:
            raise _RowError(cols.answer, f"gold {rec[cols.answer]!r} is the padding option {options[gold]!r}")
        gold -= sum(o in padding for o in options[:gold])
        options = [o for o in options if o not in padding]
    opt_field = cols.options or ",".join(cols.option_columns or [])
    if not 2 <= len(options) <= len(EVAL_LETTERS):
        raise _RowError(opt_field, f"{len(options)} options; a question needs 2 to {len(EVAL_LETTERS)}")
    for letter, o in zip(EVAL_LETTERS, options):
        if not o:
            raise _RowError(opt_field, f"option {letter} is empty")
    if not question:
        raise _RowError(cols.question, "empty once the options are taken out")
    return question, options, gold


# --- images -----------------------------------------------------------------------------------------------


def _read_path(value: str, root: Path, col: str) -> bytes:
    full = (root / value).resolve()
    if not full.is_relative_to(root.resolve()):
        raise _RowError(col, f"image path {value!r} is outside image_root {root}")
    if not full.is_file():
        raise _RowError(col, f"image file not found: {full}")
    return full.read_bytes()


def image_bytes(value: Any, root: Path, col: str = "image") -> bytes | None:
    """The original bytes of an image given as bytes, an HF image struct, base64 text or a path under root."""
    if _missing(value):
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
    elif isinstance(value, dict):  # HF datasets.Image: {"bytes": ..., "path": ...}
        if not _missing(value.get("bytes")):
            data = bytes(value["bytes"])
        elif not _missing(value.get("path")):
            data = _read_path(str(value["path"]), root, col)
        else:
            return None
    elif isinstance(value, str):
        s = value.strip()
        compact = "".join(s.split())
        data = None
        # base64 (MMBench TSVs) unless a file of that name exists: "img/abcd" is valid base64 too
        if len(compact) % 4 == 0 and _BASE64.fullmatch(compact) and not (len(s) < 1024 and (root / s).is_file()):
            try:
                data = base64.b64decode(compact, validate=True)
            except binascii.Error:
                data = None
        if data is None:
            data = _read_path(s, root, col)
    else:
        raise _RowError(col, f"not an image: {type(value).__name__}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # high-resolution benchmarks are legitimate
        try:
            with Image.open(io.BytesIO(data)) as img:
                img.load()  # decode fully: truncated files fail here, not in the model's engine
        except Exception as e:
            raise _RowError(col, f"image does not decode: {pil_error(e, 'image')}") from None
    return data


# --- sampling ---------------------------------------------------------------------------------------------


def stratified_quotas(counts: dict[str, int], n: int) -> dict[str, int]:
    """How many of each task's rows a sample of n keeps: each task's share n * count / total, rounded down,
    and the rows left over go to the largest remainders (ties: the larger task, then the name). When n covers
    one row per task, a task left with none takes one from the task with the most (ties: the name)."""
    total = sum(counts.values())
    if n >= total:
        return dict(counts)
    shares = {t: Fraction(n * c, total) for t, c in counts.items()}
    quota = {t: math.floor(s) for t, s in shares.items()}
    for t in sorted(counts, key=lambda t: (quota[t] - shares[t], -counts[t], t))[: n - sum(quota.values())]:
        quota[t] += 1
    if n >= len(counts):
        for t in sorted(t for t in quota if quota[t] == 0):
            donor = min(quota, key=lambda u: (-quota[u], u))
            quota[donor] -= 1
            quota[t] += 1
    return quota


# --- the loader -------------------------------------------------------------------------------------------


@dataclass
class _Candidate:
    file_index: int
    file: Path
    row: int
    question_id: str
    task: str
    question: str
    options: list[str]
    gold: int
    image_ref: Any
    image_field: str


def _problem(file: Path, row: int, e: _RowError) -> dict[str, Any]:
    return {"file": str(file), "row": row, "field": e.field, "reason": e.reason}


def load_suite(spec: FileSuite) -> SuiteLoad:
    """Every question of a suite's local files (or a seeded, per-task sample of max_questions), with its
    rendered prompts; rows that cannot be used are in `skipped`."""
    if spec.kind not in PRESETS and spec.kind != "mcq":
        raise ValueError(f"suite {spec.name}: kind {spec.kind!r} is not a file layout")
    layout = PRESETS.get(spec.kind) or Layout(SuiteColumns(), image_required=False)
    cols = suite_columns(spec)
    files = _files(spec.path, spec.name, layout.patterns, layout.single) if layout.patterns else [spec.path]
    wanted = {f: c for f in ("question", "options", "answer", "image", "task", "id") if (c := getattr(cols, f))}
    wanted |= {f"option {EVAL_LETTERS[i]}": c for i, c in enumerate(cols.option_columns or [])}
    if cols.image is None and layout.image_path is not None:
        wanted |= {f"image path ({c})": c for c in layout.needs}

    problems: list[tuple[int, dict[str, Any]]] = []
    candidates: list[_Candidate] = []
    seen: dict[str, int] = {}
    for fi, path in enumerate(files):
        root = spec.image_root or path.parent
        for row, rec, err in _read(path, spec.name, wanted):
            try:
                if err is not None:
                    raise err
                question, options, gold = _question_and_options(rec, cols, layout.padding)
                task = _text(rec, cols.task) if cols.task else spec.kind
                qid = _text(rec, cols.id) if cols.id else str(row)
                if len(files) > 1:  # ids restart per file in split layouts (CV-Bench 2D/3D)
                    qid = f"{path.stem}/{qid}"
                if qid in seen:
                    raise _RowError(cols.id or "row", f"question_id {qid!r} repeats an earlier row's")
                if cols.image is not None:
                    image_ref, image_field = rec.get(cols.image), cols.image
                elif layout.image_path is not None:
                    image_ref, image_field = layout.image_path(rec), "image"
                else:
                    image_ref, image_field = None, "image"
                if layout.image_required and _missing(image_ref):
                    raise _RowError(image_field, "no image")
            except _RowError as e:
                problems.append((fi, _problem(path, row, e)))
                continue
            seen[qid] = row
            candidates.append(
                _Candidate(fi, path, row, qid, task, question, options, gold, (image_ref, root), image_field)
            )

    by_task: dict[str, list[_Candidate]] = defaultdict(list)
    for c in candidates:
        by_task[c.task].append(c)
    if spec.max_questions is None:
        quotas = {t: len(cs) for t, cs in by_task.items()}
    else:
        quotas = stratified_quotas({t: len(cs) for t, cs in by_task.items()}, spec.max_questions)
        for cs in by_task.values():
            cs.sort(key=lambda c: content_id("lgt-benchmark-sample", spec.seed, c.question_id))

    kept: list[tuple[_Candidate, bytes | None]] = []
    for t, cs in by_task.items():
        n = 0
        for c in cs:
            if n == quotas[t]:
                break
            value, root = c.image_ref
            try:
                data = image_bytes(value, root, c.image_field)
                if data is None and layout.image_required:
                    raise _RowError(c.image_field, "no image")
            except _RowError as e:
                problems.append((c.file_index, _problem(c.file, c.row, e)))
                continue
            kept.append((c, data))
            n += 1

    skipped = [p for _, p in sorted(problems, key=lambda x: (x[0], x[1]["row"]))]
    if not kept:
        shown = "; ".join(f"{p['file']} row {p['row']} {p['field']}: {p['reason']}" for p in skipped[:3])
        raise ValueError(f"suite {spec.name}: no row loads from {[str(f) for f in files]} ({shown})")
    kept.sort(key=lambda x: (x[0].file_index, x[0].row))
    rows = []
    for c, data in kept:
        system, user = mcq_prompts(c.question, c.options, reasoning_type=c.task.lower(), has_image=data is not None)
        rows.append(
            {
                "benchmark": spec.name,
                "task": c.task,
                "question_id": c.question_id,
                "source_file": str(c.file),
                "row": c.row,
                "question": c.question,
                "options": c.options,
                "gold_letter": EVAL_LETTERS[c.gold],
                "image": data,
                "image_id": image_id_of(data) if data is not None else None,
                "stand_in": None,  # published benchmarks come without a caption
                "system_prompt": system,
                "user_prompt": user,
            }
        )
    return SuiteLoad(pa.Table.from_pylist(rows, schema=BENCHMARK_ARROW), skipped)
