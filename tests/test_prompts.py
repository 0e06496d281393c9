"""`LGT_PROMPTS`: prompts read from another folder, cached per folder, versions by content."""

import hashlib
import shutil

import pytest

from lgt.prompts import PROMPTS_DIR, load_prompt, prompts_dir


def _version(path) -> str:
    return f"{path.stem}@{hashlib.sha256(path.read_bytes()).hexdigest()[:12]}"


def test_default_folder_is_the_repository_prompts(monkeypatch):
    monkeypatch.delenv("LGT_PROMPTS", raising=False)
    assert prompts_dir() == PROMPTS_DIR
    assert load_prompt("long_cot.j2").version == _version(PROMPTS_DIR / "long_cot.j2")


def test_an_edited_copy_is_read_and_cached_apart_from_the_original(tmp_path, monkeypatch):
    copy = tmp_path / "p"
    shutil.copytree(PROMPTS_DIR, copy)
    original = load_prompt("solve_mcq.j2")
    monkeypatch.setenv("LGT_PROMPTS", str(copy))
    assert prompts_dir() == copy
    # an unedited copy has the same content, so the same version (and so the same code versions)
    assert load_prompt("solve_mcq.j2").version == original.version

    edited = tmp_path / "q"
    shutil.copytree(PROMPTS_DIR, edited)
    f = edited / "solve_mcq.j2"
    f.write_text(f.read_text().replace("Answer with the letter", "Reply with the letter"))
    monkeypatch.setenv("LGT_PROMPTS", str(edited))
    p = load_prompt("solve_mcq.j2")
    assert p.version == _version(f) != original.version
    text = p.render(question="Q?", options=[("A", "x"), ("B", "y")])
    assert text.endswith(
        "Reply with the letter of the one correct option, inside <answer></answer>, e.g. <answer>(B)</answer>."
    )

    # back to the repository: the original, not the edited copy's cached template
    monkeypatch.delenv("LGT_PROMPTS")
    again = load_prompt("solve_mcq.j2")
    assert again.version == original.version
    assert "Answer with the letter" in again.render(question="Q?", options=[("A", "x")])


def test_templates_and_their_includes_come_from_the_chosen_folder(tmp_path, monkeypatch):
    for name, word in (("a", "apple"), ("b", "banana")):
        d = tmp_path / name
        d.mkdir()
        (d / "outer.j2").write_text('{# a comment #}before {% include "inner.j2" %} after')
        (d / "inner.j2").write_text(word + " {{ x }}")
    monkeypatch.setenv("LGT_PROMPTS", str(tmp_path / "a"))
    assert load_prompt("outer.j2").render(x=1) == "before apple 1 after"
    monkeypatch.setenv("LGT_PROMPTS", str(tmp_path / "b"))
    assert load_prompt("outer.j2").render(x=2) == "before banana 2 after"


def test_a_relative_folder_is_taken_from_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "x.j2").write_text("hello {{ who }}")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LGT_PROMPTS", "mine")
    assert prompts_dir() == tmp_path / "mine"
    assert load_prompt("x.j2").render(who="you") == "hello you"


def test_a_missing_folder_or_prompt_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("LGT_PROMPTS", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=r"nowhere \(\$LGT_PROMPTS\) does not exist"):
        load_prompt("long_cot.j2")
    monkeypatch.setenv("LGT_PROMPTS", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=rf"prompt 'long_cot.j2' not found in {tmp_path}"):
        load_prompt("long_cot.j2")
