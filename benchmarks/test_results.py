"""benchmarks/results.py: the pages match the results file, a figure's upsert and history, its stamps; and
benchmarks/ and tests/ do not import each other."""

import json
import re
from pathlib import Path

import results

M1 = {"cpu": "AMD EPYC", "cores": 2, "memory": "23 GiB", "gpu": "no GPU"}
M2 = {"cpu": "Intel Xeon", "cores": 16, "memory": "125 GiB", "gpu": "NVIDIA H100 80GB HBM3"}


def test_the_pages_are_what_render_writes():
    assert results.stale() == [], "run `python benchmarks/results.py render`"
    assert results.main(["check"]) == 0


def test_every_section_is_a_heading_of_the_notes_or_a_file():
    data = results.load()
    notes = (results.HERE / results.NOTES).read_text()
    heads = results.headings(notes)
    for e in data["figures"] + data["history"]:
        section = e.get("section")
        assert section, e["figure"]
        if results.is_file_section(section):
            assert (results.ROOT / section.split("#")[0]).is_file(), section
        else:
            assert heads.count(section) == 1, section  # one heading, so its anchor has no "-1" suffix
    assert {e["machine"] for e in data["figures"] + data["history"]} == set(data["machines"])


def test_record_upserts_keeps_the_replaced_value_and_renders(tmp_path, monkeypatch):
    monkeypatch.delenv("LGT_NO_RECORD", raising=False)
    path = tmp_path / "results.json"
    (tmp_path / results.NOTES).write_text("## Speed\n\nRun of 2026-01-01.\n")
    kw = dict(command="python benchmarks/x.py", path=path, commit="abc1234", machine=M1)
    results.record("speed", "b figure", "1.0x", section="Speed", notes="first", date="2026-01-01T00:00:00Z", **kw)
    results.record("engines", "a figure", 3, date="2026-01-01T00:00:00Z", **kw)
    data = json.loads(path.read_text())
    assert [(e["area"], e["figure"]) for e in data["figures"]] == [("engines", "a figure"), ("speed", "b figure")]
    assert data["history"] == [] and list(data["machines"]) == [results.machine_key(M1)]

    # the same value again: stamped anew, nothing to the history
    results.record("speed", "b figure", "1.0x", date="2026-01-02T00:00:00Z", **kw)
    data = json.loads(path.read_text())
    assert data["history"] == []
    assert data["figures"][1]["date"] == "2026-01-02T00:00:00Z" and data["figures"][1]["section"] == "Speed"
    assert "notes" not in data["figures"][1]  # notes describe a value: not carried over

    # another value on another machine: the old entry goes to the history, both machines in the legend
    kw.update(commit="def5678+dirty", machine=M2)
    results.record("speed", "b figure", "1.5x", notes="second", date="2026-01-03T00:00:00Z", **kw)
    data = json.loads(path.read_text())
    assert data["history"] == [
        {
            "area": "speed",
            "command": "python benchmarks/x.py",
            "commit": "abc1234",
            "date": "2026-01-02T00:00:00Z",
            "figure": "b figure",
            "machine": results.machine_key(M1),
            "section": "Speed",
            "superseded": "2026-01-03T00:00:00Z",
            "value": "1.0x",
        }
    ]
    now = data["figures"][1]
    assert (now["value"], now["commit"], now["notes"], now["machine"]) == (
        "1.5x",
        "def5678+dirty",
        "second",
        results.machine_key(M2),
    )
    assert set(data["machines"]) == {results.machine_key(M1), results.machine_key(M2)}
    assert path.read_text() == results.dumps(data)  # the stable layout: sorted, two-space indent, newline at the end

    # record rendered both pages: in sync; a hand edit is caught by check
    assert results.stale(path) == []
    readme, history = (tmp_path / "README.md").read_text(), (tmp_path / "HISTORY.md").read_text()
    assert (
        "| [b figure](HISTORY.md#speed) | 1.5x [1] | `python benchmarks/x.py` | `def5678+dirty` | 2026-01-03 |"
        in readme
    )
    assert "- [1] second" in readme and "NVIDIA H100 80GB HBM3" in readme
    assert "| b figure | 1.0x | 2026-01-03 | as now | `abc1234` | 2026-01-02 |" in history
    assert history.rstrip().endswith("Run of 2026-01-01.")
    (tmp_path / "README.md").write_text(readme.replace("1.5x", "2x"))
    assert results.main(["--results", str(path), "check"]) == 1
    assert results.main(["--results", str(path), "render"]) == 0 and results.stale(path) == []


def test_no_record_and_the_stamps(tmp_path, monkeypatch):
    monkeypatch.setenv("LGT_NO_RECORD", "1")
    assert results.record("a", "b", 1, command="c", path=tmp_path / "r.json") is None
    assert not (tmp_path / "r.json").exists()
    assert re.fullmatch(r"[0-9a-f]{7,40}(\+dirty)?|unknown", results.current_commit())
    m = results.current_machine()
    assert set(m) == {"cpu", "cores", "memory", "gpu"} and m["cores"] >= 1
    assert results.machine_key(m) == results.machine_key(dict(reversed(list(m.items()))))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", results.now())
    assert (
        results.slug("Leak filter vs LPT's (`benchmarks/leak_filter.py`)")
        == "leak-filter-vs-lpts-benchmarksleak_filterpy"
    )


def test_a_run_without_notes_renders_without_them(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(results.dumps(results.empty()))
    assert results.render_files(path) == [tmp_path / "README.md", tmp_path / "HISTORY.md"]
    assert "None yet." in (tmp_path / "HISTORY.md").read_text()
    assert Path(path).read_text() == results.dumps(results.empty())
