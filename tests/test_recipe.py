"""Recipes: validation errors say where and what; the graph follows the YAML."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lgt.partitions import split_partition_key
from lgt.paths import DEFAULT_RECIPE
from lgt.recipe import RecipeError, load_recipe, recipe_path

ROOT = Path(__file__).resolve().parent.parent
MODELS = textwrap.dedent(
    """
    models:
      vlm: {backend: transformers, model: base_model}
      reasoner: {backend: transformers, model: base_model}
      verifier: {backend: transformers, model: base_model}
      small_solver: {backend: transformers, model: base_model}
    """
)


def write(tmp_path, body: str, name="r.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(body) + MODELS)
    return p


def test_demo_recipe_loads():
    r = load_recipe(DEFAULT_RECIPE)
    assert r.name == "demo"
    assert r.partition_keys() == ["synth/0", "synth/1"]
    assert r.models.vlm.sampling.n == 4 and r.models.vlm.sampling.top_p == 0.8
    assert len(r.digest()) == 16 and r.digest() == load_recipe(DEFAULT_RECIPE).digest()


def test_error_names_line_path_value_and_expectation(tmp_path):
    p = write(
        tmp_path,
        """
        name: t
        sources:
          - name: s
            kind: synthetic_scenes
            width: -5
        """,
    )
    with pytest.raises(RecipeError) as e:
        load_recipe(p)
    msg = str(e.value)
    assert str(p) in msg
    assert "line 6: sources[0].width: got -5; expected: Input should be greater than or equal to 64" in msg


def test_unknown_key_missing_key_and_bad_kind(tmp_path):
    p = write(
        tmp_path,
        """
        name: t
        sources:
          - name: s
            kind: synthetic_scenes
            colour: red
          - name: d
            kind: docci
          - name: x
            kind: imagenet
        """,
    )
    msg = str(pytest.raises(RecipeError, load_recipe, p).value)
    assert 'line 6: sources[0].colour: got "red"; expected: Extra inputs are not permitted' in msg
    assert "sources[1].descriptions: got nothing (the key is missing); expected: Field required" in msg
    assert "sources[2]" in msg and "imagenet" in msg and "'synthetic_scenes', 'coco', 'docci', 'parquet'" in msg


def test_a_per_shard_count_of_an_older_recipe_names_the_share_that_replaced_it(tmp_path):
    p = write(
        tmp_path,
        """
        name: t
        sources: [{name: s, kind: synthetic_scenes}]
        stages:
          simple_cots: {max_questions: 6}
        """,
    )
    msg = str(pytest.raises(RecipeError, load_recipe, p).value)
    assert "line 5: stages.simple_cots.max_questions: got 6; expected: Extra inputs are not permitted" in msg
    assert "max_questions became `share`" in msg


def test_object_range_duplicate_names_and_openai_url(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text(
        textwrap.dedent(
            """
            name: t
            sources:
              - {name: s, kind: synthetic_scenes, objects: [5, 2]}
              - {name: s, kind: synthetic_scenes}
            models:
              vlm: {backend: openai, model: m}
              reasoner: {backend: transformers, model: m}
              verifier: {backend: transformers, model: m}
              small_solver: {backend: transformers, model: m}
            """
        )
    )
    msg = str(pytest.raises(RecipeError, load_recipe, p).value)
    assert "sources[0].objects: got [5, 2]; expected: Value error, expected [min, max]" in msg
    assert "models.vlm: got" in msg and "backend 'openai' needs base_url" in msg
    # duplicate names are a list-level error, reported once the items are valid
    p.write_text(
        p.read_text()
        .replace("objects: [5, 2]", "objects: [2, 5]")
        .replace("backend: openai, model: m", "backend: openai, model: m, base_url: 'http://127.0.0.1:1/v1'")
    )
    msg = str(pytest.raises(RecipeError, load_recipe, p).value)
    assert "source names must be unique; repeated: s" in msg


def test_not_yaml_and_not_a_mapping(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: [unclosed\n")
    assert "not valid YAML" in str(pytest.raises(RecipeError, load_recipe, p).value)
    p.write_text("- just\n- a list\n")
    assert "expected a mapping at the top level, got list" in str(pytest.raises(RecipeError, load_recipe, p).value)
    assert "cannot read recipe" in str(pytest.raises(RecipeError, load_recipe, tmp_path / "none.yaml").value)


def test_lgt_recipe_env_picks_the_file(tmp_path, monkeypatch):
    p = write(tmp_path, "name: other\nsources:\n  - {name: a, kind: synthetic_scenes, shards: 2}\n")
    monkeypatch.setenv("LGT_RECIPE", str(p))
    assert recipe_path() == p.resolve()
    assert load_recipe().name == "other"
    monkeypatch.delenv("LGT_RECIPE")
    assert recipe_path() == DEFAULT_RECIPE


def test_relative_paths_resolve_against_the_recipe_file(tmp_path):
    p = write(
        tmp_path,
        """
        name: t
        sources:
          - {name: d, kind: docci, descriptions: data/d.jsonl, images: data/img}
        """,
    )
    src = load_recipe(p).source("d")
    assert src.descriptions == (tmp_path / "data/d.jsonl").resolve()
    assert src.images == (tmp_path / "data/img").resolve()


def test_more_sources_and_shards_add_partitions_without_code(tmp_path):
    from lgt_assets import build_definitions

    p = write(tmp_path, "name: t\nsources:\n  - {name: a, kind: synthetic_scenes, shards: 2}\n")
    defs = build_definitions(load_recipe(p), base_path=str(tmp_path))
    keys = defs.resolve_assets_def("images").partitions_def.get_partition_keys()
    assert keys == ["a/0", "a/1"]
    p = write(
        tmp_path,
        "name: t\nsources:\n  - {name: a, kind: synthetic_scenes, shards: 3}\n"
        "  - {name: b, kind: docci, shards: 2, descriptions: d.jsonl, images: img}\n",
    )
    defs = build_definitions(load_recipe(p), base_path=str(tmp_path))
    assert defs.resolve_assets_def("images_quarantine").partitions_def.get_partition_keys() == [
        "a/0",
        "a/1",
        "a/2",
        "b/0",
        "b/1",
    ]


def test_partition_key_round_trip():
    assert split_partition_key("my-src/12") == ("my-src", 12)
    with pytest.raises(ValueError, match="not <source>/<shard>"):
        split_partition_key("nope")


def test_cli_lists_partitions_and_reports_errors(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "lgt.recipe", "partitions", str(DEFAULT_RECIPE)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode == 0 and out.stdout.split() == ["synth/0", "synth/1"]
    bad = write(tmp_path, "name: t\nsources: []\n")
    out = subprocess.run(
        [sys.executable, "-m", "lgt.recipe", "check", str(bad)], capture_output=True, text=True, cwd=ROOT
    )
    assert out.returncode == 2 and "sources: got []; expected: List should have at least 1 item" in out.stderr
