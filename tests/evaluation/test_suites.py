"""Benchmark loaders on small files in each published layout, column mappings, bad input and sampling."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from lgt.evaluation.settings import FileSuite, SuiteColumns
from lgt.evaluation.suites import gold_index, load_suite, split_lettered, stratified_quotas, strip_letters
from schemas.evaluation import BENCHMARK_ARROW, BenchmarkSchema
from tests.evaluation import suite_fixtures as fx


def _load(kind: str, path: Path, name: str | None = None, **kw):
    return load_suite(FileSuite(kind=kind, name=name or kind.replace("_", "-"), path=path, **kw))


def _check(result, fixture: fx.Fixture, name: str, text_only: bool = False) -> None:
    """The table matches the fixture row by row, validates, and asks each question with lettered options."""
    table = result.table
    assert table.schema == BENCHMARK_ARROW
    BenchmarkSchema.validate(table.to_pandas())
    got = table.to_pylist()
    assert len(got) == len(fixture.rows)
    for row, exp in zip(got, fixture.rows):
        assert row["benchmark"] == name
        assert row["question_id"] == exp.question_id
        assert row["task"] == exp.task
        assert row["question"] == exp.question
        assert row["options"] == exp.options
        assert row["gold_letter"] == exp.gold
        assert row["row"] == exp.row
        assert row["image"] == exp.image
        if exp.image is None:
            assert row["image_id"] is None
        else:
            assert row["image_id"] == hashlib.sha256(exp.image).hexdigest()[:32]  # as the images table keys images
        assert row["stand_in"] is None
        user = row["user_prompt"]
        assert user.startswith(exp.question)
        for letter, option in zip(fx.LETTERS, exp.options):
            assert f"({letter}) {option}" in user
        assert len(re.findall(r"^\([A-J]\) ", user, re.MULTILINE)) == len(exp.options)  # and no other option
        assert (
            f"This is a {exp.task.lower()} question about {'a text' if text_only else 'an image'}"
            in (row["system_prompt"])
        )


def test_cv_bench_folder_with_2d_and_3d_files(tmp_path):
    fixture = fx.write_cv_bench(tmp_path)
    result = _load("cv_bench", fixture.path)
    _check(result, fixture, "cv-bench")
    assert result.skipped == []
    files = [r["source_file"] for r in result.table.to_pylist()]
    assert files == [str(fixture.path / "test_2d.parquet")] * 3 + [str(fixture.path / "test_3d.parquet")] * 2
    assert result.table.column("gold_letter").to_pylist() == ["C", "B", "A", "A", "B"]


def test_cv_bench_single_file_keeps_its_own_ids(tmp_path):
    fixture = fx.write_cv_bench(tmp_path)
    result = _load("cv_bench", fixture.path / "test_3d.parquet")
    assert result.table.column("question_id").to_pylist() == ["0", "1"]
    assert result.table.column("task").to_pylist() == ["Depth", "Distance"]


def test_vstar_strips_options_and_instruction_from_text(tmp_path):
    fixture = fx.write_vstar(tmp_path)
    result = _load("vstar", fixture.path)
    _check(result, fixture, "vstar")
    for row in result.table.to_pylist():
        assert fx.VSTAR_INSTRUCTION not in row["question"] + " ".join(row["options"])


def test_mmvp_lower_case_letters_and_image_folder(tmp_path):
    fixture = fx.write_mmvp(tmp_path)
    result = _load("mmvp", fixture.path)
    _check(result, fixture, "mmvp")
    assert result.table.column("gold_letter").to_pylist() == ["A", "B", "B"]


def test_mmstar_options_inside_question(tmp_path):
    fixture = fx.write_mmstar(tmp_path)
    result = _load("mmstar", fixture.path)
    _check(result, fixture, "mmstar")
    assert all("Options" not in q for q in result.table.column("question").to_pylist())


def test_mme_realworld_lettered_choice_list(tmp_path):
    fixture = fx.write_mme_realworld(tmp_path)
    result = _load("mme_realworld", fixture.path)
    _check(result, fixture, "mme-realworld")
    assert [len(o) for o in result.table.column("options").to_pylist()] == [5, 5, 5]


def test_mme_realworld_task_column_override(tmp_path):
    fixture = fx.write_mme_realworld(tmp_path)
    result = _load("mme_realworld", fixture.path, columns=SuiteColumns(task="Subtask"))
    assert result.table.column("task").to_pylist() == ["Monitoring", "Diagram_and_Table", "Autonomous_Driving"]
    assert result.table.column("gold_letter").to_pylist() == ["E", "B", "C"]  # the rest of the preset still holds


def test_mmlu_pro_drops_padding_and_has_no_image(tmp_path):
    fixture = fx.write_mmlu_pro(tmp_path)
    result = _load("mmlu_pro", fixture.path)
    _check(result, fixture, "mmlu-pro", text_only=True)
    assert [len(o) for o in result.table.column("options").to_pylist()] == [10, 3, 2]
    assert result.table.column("image").null_count == 3


def test_mcq_csv_with_column_mapping(tmp_path):
    fixture = fx.write_mcq_csv(tmp_path)
    cols = SuiteColumns(question="prompt", options="choices", answer="gold", image="picture", task="kind", id="qid")
    result = _load("mcq", fixture.path, name="home-csv", columns=cols)
    _check(result, fixture, "home-csv")


def test_mcq_jsonl_list_options_base64_images_row_ids(tmp_path):
    fixture = fx.write_mcq_jsonl(tmp_path)
    cols = SuiteColumns(question="q", options="opts", answer="gold", image="b64", task="t")
    result = _load("mcq", fixture.path, name="home-jsonl", columns=cols)
    _check(result, fixture, "home-jsonl")


def test_mcq_mmbench_tsv_option_columns(tmp_path):
    fixture = fx.write_mmbench_tsv(tmp_path)
    cols = SuiteColumns(
        question="question",
        option_columns=["A", "B", "C", "D"],
        answer="answer",
        image="image",
        task="category",
        id="index",
    )
    result = _load("mcq", fixture.path, name="mmbench", columns=cols)
    _check(result, fixture, "mmbench")


def test_missing_file_names_suite_and_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"suite mmvp: .*nowhere"):
        _load("mmvp", tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"suite mmvp: no Questions\.csv in .*empty"):
        _load("mmvp", tmp_path / "empty")


def test_missing_column_names_column_and_lists_the_others(tmp_path):
    fixture = fx.write_mmlu_pro(tmp_path)
    path = fixture.path / "data" / "test-00000-of-00001.parquet"
    pq.write_table(pq.read_table(path).drop(["answer"]), path)
    with pytest.raises(ValueError) as e:
        _load("mmlu_pro", fixture.path)
    msg = str(e.value)
    assert "suite mmlu-pro" in msg and str(path) in msg and "'answer'" in msg and "'answer_index'" in msg


def test_mcq_needs_columns(tmp_path):
    fixture = fx.write_mcq_csv(tmp_path)
    with pytest.raises(ValueError, match="kind mcq has no preset"):
        _load("mcq", fixture.path)
    with pytest.raises(ValueError, match="needs columns answer, options or option_columns"):
        _load("mcq", fixture.path, columns=SuiteColumns(question="prompt"))


def test_bad_rows_are_reported_not_dropped(tmp_path):
    path, fields = fx.write_bad_rows_csv(tmp_path)
    cols = SuiteColumns(question="question", options="options", answer="answer", image="image", id="id")
    result = _load("mcq", path, name="bad", columns=cols)
    assert result.table.column("question_id").to_pylist() == ["ok-0", "ok-7"]
    assert result.table.column("gold_letter").to_pylist() == ["A", "C"]
    assert {p["row"]: p["field"] for p in result.skipped} == fields
    assert all(p["file"] == str(path) for p in result.skipped)
    reasons = {p["row"]: p["reason"] for p in result.skipped}
    assert "names no option" in reasons[1]
    assert "1 options" in reasons[2]
    assert "not found" in reasons[3]
    assert "outside image_root" in reasons[4]
    assert "does not decode" in reasons[5]
    assert "neither an option letter" in reasons[6]
    BenchmarkSchema.validate(result.table.to_pandas())


def test_no_loadable_row_raises(tmp_path):
    folder = tmp_path / "all-bad"
    folder.mkdir()
    (folder / "q.jsonl").write_text(json.dumps({"q": "Which?", "o": ["x"], "a": "A"}) + "\n{not json\n")
    cols = SuiteColumns(question="q", options="o", answer="a")
    with pytest.raises(ValueError, match=r"suite all-bad: no row loads .* row 0 o: 1 options"):
        _load("mcq", folder / "q.jsonl", name="all-bad", columns=cols)


def test_repeated_question_id_is_reported(tmp_path):
    folder = tmp_path / "dup"
    folder.mkdir()
    lines = [{"id": 7, "q": f"Q{i}?", "o": ["x", "y"], "a": 1} for i in range(2)]
    (folder / "q.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    cols = SuiteColumns(question="q", options="o", answer="a", id="id")
    result = _load("mcq", folder / "q.jsonl", name="dup", columns=cols)
    assert result.table.column("question").to_pylist() == ["Q0?"]
    assert result.skipped == [
        {"file": str(folder / "q.jsonl"), "row": 1, "field": "id", "reason": "question_id '7' repeats an earlier row's"}
    ]


COUNTS = {"count": 10, "depth": 6, "relation": 3, "distance": 1}


def test_stratified_quotas_worked_by_hand():
    # n=7 of 20: shares 3.5, 2.1, 1.05, 0.35 -> floors 3, 2, 1, 0 (6); the one left goes to count (.5);
    # distance has none, so count (the largest, 4) gives it one
    assert stratified_quotas(COUNTS, 7) == {"count": 3, "depth": 2, "relation": 1, "distance": 1}
    # n=10: shares 5, 3, 1.5, 0.5 -> 5, 3, 1, 0; relation and distance tie at .5, the larger (relation) wins;
    # then distance takes one from count
    assert stratified_quotas(COUNTS, 10) == {"count": 4, "depth": 3, "relation": 2, "distance": 1}
    # n=3 < 4 tasks: no floor of one; shares 1.5, .9, .45, .15 -> 1, 0, 0, 0; remainders .9 (depth), .5 (count)
    assert stratified_quotas(COUNTS, 3) == {"count": 2, "depth": 1, "relation": 0, "distance": 0}
    assert stratified_quotas(COUNTS, 50) == COUNTS


def test_max_questions_sample_is_seeded_per_task_and_in_file_order(tmp_path):
    path = fx.write_tasks_jsonl(tmp_path, COUNTS)
    cols = SuiteColumns(question="q", options="o", answer="a", image="img", task="task", id="id")

    def sample(seed: int):
        return _load("mcq", path, name="tasks", columns=cols, max_questions=7, seed=seed).table

    first = sample(1)
    assert Counter(first.column("task").to_pylist()) == {"count": 3, "depth": 2, "relation": 1, "distance": 1}
    rows = first.column("row").to_pylist()
    assert rows == sorted(rows)
    assert first.equals(sample(1))
    others = [set(sample(seed).column("question_id").to_pylist()) for seed in range(2, 6)]
    assert any(ids != set(first.column("question_id").to_pylist()) for ids in others)
    assert len(_load("mcq", path, name="tasks", columns=cols).table) == 20  # no max_questions: every row


def test_sample_refills_a_task_when_an_image_fails(tmp_path):
    probe = fx.write_tasks_jsonl(tmp_path / "probe", COUNTS)
    lines = [json.loads(x) for x in probe.read_text().splitlines()]
    count_rows = [i for i, x in enumerate(lines) if x["task"] == "count"]
    good = set(count_rows[-3:])  # exactly the 3 rows count's quota needs; the other 7 count images are missing
    path = fx.write_tasks_jsonl(tmp_path / "real", COUNTS, broken=set(count_rows) - good)
    cols = SuiteColumns(question="q", options="o", answer="a", image="img", task="task", id="id")
    result = _load("mcq", path, name="tasks", columns=cols, max_questions=7, seed=3)
    got = result.table.to_pylist()
    assert {r["row"] for r in got if r["task"] == "count"} == good
    assert len(got) == 7
    assert result.skipped, "the draw met missing images before the good ones"
    assert {p["row"] for p in result.skipped} <= set(count_rows) - good
    assert all(p["field"] == "img" and "not found" in p["reason"] for p in result.skipped)
    # with one good count row left, the quota cannot be met: the sample is short, every failure reported
    path = fx.write_tasks_jsonl(tmp_path / "short", COUNTS, broken=set(count_rows[1:]))
    result = _load("mcq", path, name="tasks", columns=cols, max_questions=7, seed=3)
    assert Counter(result.table.column("task").to_pylist()) == {"count": 1, "depth": 2, "relation": 1, "distance": 1}
    assert sorted(p["row"] for p in result.skipped) == count_rows[1:]


def test_split_lettered_styles():
    assert split_lettered("Q?\n(A) red\n(B) blue\nAnswer with the letter.") == ("Q?", ["red", "blue"])
    assert split_lettered("Q?\nOptions: A: 1, 2, B: 3, C: 4") == ("Q?", ["1, 2", "3", "4"])
    assert split_lettered("(a) Open (b) Closed") == ("", ["Open", "Closed"])
    assert split_lettered("Pick one.\nA. cat\nB. dog") == ("Pick one.", ["cat", "dog"])
    # the question names (A) too: the run of options is the later one
    assert split_lettered("In panel (A), which is red?\n(A) x\n(B) y") == ("In panel (A), which is red?", ["x", "y"])
    with pytest.raises(ValueError):
        split_lettered("no options here")


def test_strip_letters_and_gold_index():
    assert strip_letters(["(A) x", "(B) y"]) == ["x", "y"]
    assert strip_letters(["(A) x", "(C) y"]) == ["(A) x", "(C) y"]  # not its own letter: text kept
    assert [gold_index(v) for v in ("B", "(b)", "C.", 3, "0", 2.0)] == [1, 1, 2, 3, 0, 2]
    for bad in ("K", "", -1, True, "maybe"):
        with pytest.raises(ValueError):
            gold_index(bad)
