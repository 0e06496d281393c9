"""Small benchmark files in each published layout, written from the questions and golds listed here.

Each writer returns a `Fixture`: the path a suite names and the rows a loader must give back, in file order,
stated as written (letters, option texts, image bytes), not as any loader computes them.
"""

from __future__ import annotations

import base64
import csv
import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tests.fixtures import BLUE, GREEN, RED, jpeg, png

LETTERS = "ABCDEFGHIJ"
HF_IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


@dataclass
class Expected:
    question_id: str
    task: str
    question: str
    options: list[str]
    gold: str  # the letter
    image: bytes | None
    row: int


@dataclass
class Fixture:
    path: Path
    rows: list[Expected]


def _img(i: int, kind: str = "png") -> bytes:
    """A distinct tiny image per i, so equal bytes mean the right image."""
    color = [RED, GREEN, BLUE, (200, 200, 0), (0, 200, 200), (90, 40, 160)][i % 6]
    size = (8 + i, 6 + i)
    return png(color, size) if kind == "png" else jpeg(color, size)


def _save(path: Path, data: bytes) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def write_cv_bench(root: Path) -> Fixture:
    """nyu-visionx/CV-Bench after the 2D/3D split: test_2d.parquet and test_3d.parquet, HF image structs."""
    folder = root / "CV-Bench"
    folder.mkdir(parents=True)
    files = {
        "test_2d": [
            ("Count", "How many chairs are in the image?", ["3", "0", "2", "1"], "C"),
            ("Relation", "Is the cup (annotated by the red box) left or right of the plate?", ["left", "right"], "B"),
            ("Count", "How many lamps are in the image?", ["4", "1", "5", "0", "2"], "A"),
        ],
        "test_3d": [
            ("Depth", "Which is closer to the camera, the sofa or the table?", ["sofa", "table"], "A"),
            ("Distance", "Which is closer to the door, the bed or the desk?", ["bed", "desk"], "B"),
        ],
    }
    rows: list[Expected] = []
    n = 0
    for stem, questions in files.items():
        cols: dict[str, list] = {k: [] for k in ("idx", "type", "task", "image", "question", "choices", "answer")}
        cols |= {"prompt": [], "source": []}
        for i, (task, q, choices, gold) in enumerate(questions):
            data = _img(n)
            cols["idx"].append(i)  # restarts per file
            cols["type"].append(stem[-2:].upper())
            cols["task"].append(task)
            cols["image"].append({"bytes": data, "path": f"img/{stem}/{i}.png"})
            cols["question"].append(q)
            cols["choices"].append(choices)
            cols["answer"].append(f"({gold})")
            cols["prompt"].append(q + " " + " ".join(f"({L}) {c}" for L, c in zip(LETTERS, choices)))
            cols["source"].append("ADE20K" if stem == "test_2d" else "Omni3D")
            rows.append(Expected(f"{stem}/{i}", task, q, choices, gold, data, i))
            n += 1
        schema = pa.schema(
            [("idx", pa.int64()), ("type", pa.string()), ("task", pa.string()), ("image", HF_IMAGE)]
            + [("question", pa.string()), ("choices", pa.list_(pa.string())), ("answer", pa.string())]
            + [("prompt", pa.string()), ("source", pa.string())]
        )
        pq.write_table(pa.table(cols, schema=schema), folder / f"{stem}.parquet")
    return Fixture(folder, rows)


VSTAR_INSTRUCTION = "Answer with the option's letter from the given choices directly."


def write_vstar(root: Path) -> Fixture:
    """craigwu/vstar_bench: test_questions.jsonl (options and an instruction inside `text`) and image folders."""
    folder = root / "vstar_bench"
    questions = [
        (
            "direct_attributes",
            "sa_4690.jpg",
            "What is the color of the woman's bag?",
            ["red", "black", "white", "blue"],
            "B",
        ),
        (
            "direct_attributes",
            "sa_10.jpg",
            "What is the material of the glove?",
            ["rubber", "cotton", "leather", "wool"],
            "D",
        ),
        (
            "relative_position",
            "sa_77.jpg",
            "Is the dog on the left or right side of the bench?",
            ["right", "left"],
            "A",
        ),
    ]
    rows, lines = [], []
    for i, (category, name, q, options, gold) in enumerate(questions):
        data = _save(folder / category / name, _img(i, "jpeg"))
        text = q + "\n" + "\n".join(f"({L}) {o}" for L, o in zip(LETTERS, options)) + "\n" + VSTAR_INSTRUCTION
        lines.append(
            {"image": f"{category}/{name}", "text": text, "category": category, "question_id": i, "label": gold}
        )
        rows.append(Expected(str(i), category, q, options, gold, data, i))
    (folder / "test_questions.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return Fixture(folder, rows)


def write_mmvp(root: Path) -> Fixture:
    """MMVP: Questions.csv (lower-case lettered options, "(a)" golds) and "MMVP Images/<Index>.jpg"."""
    folder = root / "MMVP"
    pairs = [
        ("Are the butterfly's wings closer to being open or closed?", ["Open", "Closed"], "a"),
        ("Are the butterfly's wings closer to being open or closed?", ["Open", "Closed"], "b"),
        ("Is the dog facing left or right from the camera's perspective?", ["Left", "Right"], "b"),
    ]
    folder.mkdir(parents=True)
    rows = []
    with open(folder / "Questions.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Index", "Question", "Options", "Correct Answer"])
        for i, (q, options, gold) in enumerate(pairs):
            index = i + 1  # MMVP counts from 1
            data = _save(folder / "MMVP Images" / f"{index}.jpg", _img(i, "jpeg"))
            w.writerow([index, q, " ".join(f"({L.lower()}) {o}" for L, o in zip(LETTERS, options)), f"({gold})"])
            rows.append(Expected(str(index), "mmvp", q, options, gold.upper(), data, i))
    return Fixture(folder, rows)


def write_mmstar(root: Path) -> Fixture:
    """Lin-Chen/MMStar: mmstar.parquet, options inside `question` ("Options: A: x, B: y"), raw image bytes."""
    folder = root / "MMStar"
    folder.mkdir(parents=True)
    questions = [
        ("coarse perception", "Which mood does this image convey?", ["Happy", "Sad", "Anxious", "Calm"], "D"),
        ("math", "What is the area of the shaded square, in cm^2?", ["4", "8", "16", "2"], "C"),
        ("fine-grained perception", "How many birds are on the wire?", ["1", "2", "3", "4"], "A"),
    ]
    cols: dict[str, list] = {k: [] for k in ("index", "question", "image", "answer", "category", "l2_category")}
    rows = []
    for i, (category, q, options, gold) in enumerate(questions):
        data = _img(i)
        cols["index"].append(i)
        cols["question"].append(q + "\nOptions: " + ", ".join(f"{L}: {o}" for L, o in zip(LETTERS, options)))
        cols["image"].append(data)
        cols["answer"].append(gold)
        cols["category"].append(category)
        cols["l2_category"].append("sub")
        rows.append(Expected(str(i), category, q, options, gold, data, i))
    pq.write_table(pa.table(cols), folder / "mmstar.parquet")
    return Fixture(folder, rows)


def write_mme_realworld(root: Path) -> Fixture:
    """MME-RealWorld: a JSON list with lettered `Answer choices` and `Image` paths relative to the image folder."""
    folder = root / "MME-RealWorld"
    questions = [
        (
            "Perception/Monitoring/Vehicle/counting/0310",
            "monitoring_images/a.jpg",
            "What is the number of buses?",
            ["13", "90", "77", "6", "The image does not feature the buses"],
            "E",
            "Vehicle/counting",
        ),
        (
            "Perception/Diagram_and_Table/diagram/0558",
            "diagram_and_table/cons9.png",
            "What is the data of Interest in Feb-23 in the table?",
            ["458", "457", "456", "455", "None"],
            "B",
            "diagram",
        ),
        (
            "Reasoning/Autonomous_Driving/intention/0001",
            "AutonomousDriving/front.jpg",
            "What is the ego car about to do?",
            ["Turn left", "Stop", "Go straight", "Reverse", "None"],
            "C",
            "intention",
        ),
    ]
    records, rows = [], []
    for i, (qid, image, q, options, gold, category) in enumerate(questions):
        data = _save(folder / image, _img(i, "jpeg" if image.endswith(".jpg") else "png"))
        records.append(
            {
                "Question_id": qid,
                "Image": image,
                "Text": q,
                "Question Type": "Multiple Choice",
                "Answer choices": [f"({L}) {o}" for L, o in zip(LETTERS, options)],
                "Ground truth": gold,
                "Category": category,
                "Subtask": qid.split("/")[1],
                "Task": qid.split("/")[0],
            }
        )
        rows.append(Expected(qid, category, q, options, gold, data, i))
    (folder / "MME_RealWorld.json").write_text(json.dumps(records, indent=1))
    return Fixture(folder, rows)


def write_mmlu_pro(root: Path) -> Fixture:
    """TIGER-Lab/MMLU-Pro: data/test-00000-of-00001.parquet, ten options, "N/A" padding at the end."""
    folder = root / "MMLU-Pro"
    (folder / "data").mkdir(parents=True)
    ten = [f"{k} kg" for k in range(10)]
    questions = [
        (70, "physics", "Which mass balances the lever?", ten, "J"),
        (71, "law", "Which clause applies?", ["Clause one", "Clause two", "Clause three", "N/A", "N/A"], "C"),
        (72, "math", "What is 2 + 2?", ["3", "4", "N/A", "N/A", "N/A", "N/A", "N/A", "N/A", "N/A", "N/A"], "B"),
    ]
    cols: dict[str, list] = {k: [] for k in ("question_id", "question", "options", "answer", "answer_index")}
    cols |= {"cot_content": [], "category": [], "src": []}
    rows = []
    for i, (qid, category, q, options, gold) in enumerate(questions):
        cols["question_id"].append(qid)
        cols["question"].append(q)
        cols["options"].append(options)
        cols["answer"].append(gold)
        cols["answer_index"].append(LETTERS.index(gold))
        cols["cot_content"].append("")
        cols["category"].append(category)
        cols["src"].append(f"ori_mmlu-{category}")
        rows.append(Expected(str(qid), category, q, [o for o in options if o != "N/A"], gold, None, i))
    pq.write_table(pa.table(cols), folder / "data" / "test-00000-of-00001.parquet")
    return Fixture(folder, rows)


def write_mcq_csv(root: Path) -> Fixture:
    """A home-made CSV: lettered options in one text column, 0-based gold index, image paths under images/."""
    folder = root / "mcq_csv"
    questions = [
        ("q-1", "color", "What color is the square?", ["red", "green", "blue"], 0),
        ("q-2", "shape", "Which shape is shown?", ["circle", "square"], 1),
        ("q-3", "color", "What color is the background?", ["white", "black", "grey", "blue"], 3),
    ]
    folder.mkdir(parents=True)
    rows = []
    with open(folder / "questions.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["qid", "kind", "prompt", "choices", "gold", "picture"])
        for i, (qid, kind, q, options, gold) in enumerate(questions):
            data = _save(folder / "images" / f"{qid}.png", _img(i))
            w.writerow(
                [qid, kind, q, "\n".join(f"{L}. {o}" for L, o in zip(LETTERS, options)), gold, f"images/{qid}.png"]
            )
            rows.append(Expected(qid, kind, q, options, LETTERS[gold], data, i))
    return Fixture(folder / "questions.csv", rows)


def write_mcq_jsonl(root: Path) -> Fixture:
    """A home-made JSONL: list options, "(B)"-style golds, base64 images, no id column (ids are row numbers)."""
    folder = root / "mcq_jsonl"
    folder.mkdir(parents=True)
    questions = [
        ("depth", "Which object is nearer?", ["the cube", "the ball"], "B"),
        ("count", "How many cubes are there?", ["1", "2", "3"], "C"),
    ]
    lines, rows = [], []
    for i, (task, q, options, gold) in enumerate(questions):
        data = _img(i + 3)
        lines.append({"q": q, "opts": options, "gold": f"({gold})", "b64": base64.b64encode(data).decode(), "t": task})
        rows.append(Expected(str(i), task, q, options, gold, data, i))
    (folder / "questions.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return Fixture(folder / "questions.jsonl", rows)


def write_mmbench_tsv(root: Path) -> Fixture:
    """An MMBench-style TSV: options in columns A..D (C, D empty for 2 options), base64 images."""
    folder = root / "mmbench"
    folder.mkdir(parents=True)
    questions = [
        (
            241,
            "image_scene",
            "Which scene category matches this image the best?",
            ["rock_arch", "shopfront", "office", "beach"],
            "A",
        ),
        (242, "ocr", "Is the word in the sign STOP?", ["yes", "no"], "B"),
    ]
    rows = []
    with open(folder / "MMBench_DEV_EN.tsv", "w", newline="") as f:
        w = csv.writer(f, delimiter="\t")
        w.writerow(["index", "question", "hint", "A", "B", "C", "D", "answer", "category", "image"])
        for i, (index, category, q, options, gold) in enumerate(questions):
            data = _img(i + 1)
            padded = options + [""] * (4 - len(options))
            w.writerow([index, q, "", *padded, gold, category, base64.b64encode(data).decode()])
            rows.append(Expected(str(index), category, q, options, gold, data, i))
    return Fixture(folder / "MMBench_DEV_EN.tsv", rows)


def write_bad_rows_csv(root: Path) -> tuple[Path, dict[int, str]]:
    """A CSV whose rows 1-6 are each wrong in one way; rows 0 and 7 are good. Returns the path and, for each bad
    row, the column its problem is reported under."""
    folder = root / "bad"
    (folder / "images").mkdir(parents=True)
    (folder / "images" / "ok.png").write_bytes(_img(0))
    (folder / "images" / "ok2.png").write_bytes(_img(1))
    (folder / "images" / "broken.png").write_bytes(_img(2)[:40])  # a truncated PNG
    (root / "outside.png").write_bytes(_img(3))
    table = [
        ("ok-0", "A. red\nB. blue", "A", "images/ok.png"),
        ("gold-out", "A. red\nB. blue", "D", "images/ok.png"),  # gold names no option
        ("one-option", "A. red", "A", "images/ok.png"),  # one option
        ("no-file", "A. red\nB. blue", "B", "images/missing.png"),  # image file missing
        ("escape", "A. red\nB. blue", "B", "../outside.png"),  # path leaves image_root
        ("broken", "A. red\nB. blue", "B", "images/broken.png"),  # does not decode
        ("bad-gold", "A. red\nB. blue", "maybe", "images/ok.png"),  # not a letter or index
        ("ok-7", "A. cat\nB. dog\nC. cow", "C", "images/ok2.png"),
    ]
    with open(folder / "bad.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "question", "options", "answer", "image"])
        for qid, options, answer, image in table:
            w.writerow([qid, f"Question {qid}?", options, answer, image])
    fields = {1: "answer", 2: "options", 3: "image", 4: "image", 5: "image", 6: "answer"}
    return folder / "bad.csv", fields


def write_tasks_jsonl(root: Path, counts: dict[str, int], broken: set[int] = frozenset()) -> Path:
    """A JSONL of sum(counts) questions, tasks interleaved in file order; rows in `broken` point at a missing
    image, the others at a real one."""
    folder = root / "tasks"
    folder.mkdir(parents=True)
    (folder / "img.png").write_bytes(_img(0))
    left = dict(counts)
    lines = []
    while any(left.values()):
        for task in counts:
            if left[task]:
                left[task] -= 1
                row = len(lines)
                image = "gone.png" if row in broken else "img.png"
                lines.append(
                    {
                        "id": f"{task}-{left[task]}",
                        "task": task,
                        "q": f"Question {row}?",
                        "o": ["x", "y"],
                        "a": "A",
                        "img": image,
                    }
                )
    (folder / "tasks.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return folder / "tasks.jsonl"
