"""Teacher sampling and SFT rows (paper Section 2.3, 4.3).

Filters and row building are checked on hand-built teacher folders over real small_beauty
examples; sampling runs the real SmolLM2 through llama.cpp on one example (M=2, 32 tokens,
grammar on; its history cut short so the prompt is quick to evaluate) from the CLI.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from recsaver.cli.distill import register
from recsaver.data.records import load_examples, read_jsonl, write_jsonl
from recsaver.prompts import PromptBuilder, PromptOptions, parse_answer
from recsaver.steps.distill import FILTERS, DistillSampleConfig, build_sft, passes


@pytest.mark.parametrize("teacher, gold, kept", [
    (4, 4, {"none", "5-class", "binary", "1-off"}),
    (5, 4, {"none", "binary", "1-off"}),
    (3, 4, {"none", "1-off"}),          # 3 is "not > 3": binary disagrees, one off agrees
    (4, 3, {"none", "1-off"}),
    (2, 1, {"none", "binary", "1-off"}),
    (1, 3, {"none", "binary"}),         # both <= 3, two apart
    (5, 2, {"none"}),
    (None, 5, {"none"}),                # no teacher rating: only "none" keeps the sample
])
def test_filters(teacher, gold, kept):
    assert {f for f in FILTERS if passes(f, teacher, gold)} == kept


def test_unknown_filter_is_refused():
    with pytest.raises(ValueError, match="filter must be one of"):
        passes("2-off", 3, 3)


@pytest.fixture
def teacher_dir(small_beauty: Path, tmp_path: Path):
    """Three real examples; hand-written samples covering each filter and each way to be dropped."""
    examples = load_examples(small_beauty / "train.jsonl")
    by_label = {e.rating: e for e in examples}
    a, b, c = by_label[5], by_label[2], by_label[3]
    samples = [
        (a, 0, 5, "Loves this brand."), (a, 1, 4, "Mostly happy with similar items."),
        (a, 2, 2, "Complained about smell before."), (a, 3, None, "Unclear taste."),
        (b, 0, 2, "Dislikes greasy creams."), (b, 1, 4, "Often rates 4."),
        (b, 2, 3, None),  # no parsed reasoning: dropped and counted
        (c, 0, 1, "Bad experiences.\n### Rating ###\n1"),  # would not parse back: dropped and counted
        (c, 1, 4, "Liked a similar lotion."),
    ]
    td = tmp_path / "td"
    write_jsonl(td / "examples.jsonl", (e.to_dict() for e in (a, b, c)))
    write_jsonl(td / "samples.jsonl", ({"example_id": e.example_id, "sample": k, "rating_true": e.rating,
                                        "teacher_rating": t, "reasoning": r} for e, k, t, r in samples))
    return td, (a, b, c)


def test_build_sft_reasoning_rows(teacher_dir, tmp_path):
    td, (a, b, c) = teacher_dir
    stats = build_sft(td, "1-off", tmp_path / "sft")
    rows = list(read_jsonl(tmp_path / "sft" / "train.jsonl"))
    # 1-off keeps a:5 a:4 b:2 c:4 (the None rating and the 2-vs-5 sample are filtered out)
    assert [(r["example_id"], r["sample"]) for r in rows] == [
        (a.example_id, 0), (a.example_id, 1), (b.example_id, 0), (c.example_id, 1)]
    assert stats["dropped"] == {"no_reasoning": 1, "reasoning_with_rating_header": 1}
    assert stats["rows_per_label"] == {"1": 0, "2": 1, "3": 1, "4": 0, "5": 2, "total": 4}
    assert stats["kept_per_filter"] == {
        "none": {"1": 0, "2": 2, "3": 1, "4": 0, "5": 4, "total": 7},
        "5-class": {"1": 0, "2": 1, "3": 0, "4": 0, "5": 1, "total": 2},
        "binary": {"1": 0, "2": 1, "3": 0, "4": 0, "5": 2, "total": 3},
        "1-off": {"1": 0, "2": 1, "3": 1, "4": 0, "5": 2, "total": 4},
    }
    builder = PromptBuilder("beauty")  # the inference builder renders the training rows
    row = rows[1]  # teacher said 4, gold is 5: the target carries the GOLD rating
    assert row["teacher_rating"] == 4 and row["rating_true"] == 5
    assert row["prompt"] == builder.rating_prompt(a) == row["messages"][0]["content"]
    assert row["completion"] == builder.answer("Mostly happy with similar items.", 5)
    assert row["messages"][1] == {"role": "assistant", "content": row["completion"]}
    parsed = parse_answer(row["completion"], "cot")
    assert parsed.format_ok and parsed.rating == 5 and parsed.reasoning == "Mostly happy with similar items."
    assert json.loads((tmp_path / "sft" / "run.json").read_text())["step"] == "distill-build"


def test_build_sft_rating_only_rows(teacher_dir, tmp_path):
    td, examples = teacher_dir
    stats = build_sft(td, "none", tmp_path / "sft", rating_only=True)
    rows = list(read_jsonl(tmp_path / "sft" / "train.jsonl"))
    direct = PromptBuilder("beauty", PromptOptions(method="direct"))
    assert [r["example_id"] for r in rows] == [e.example_id for e in examples]  # one row per example
    for row, ex in zip(rows, examples):
        assert row["prompt"] == direct.rating_prompt(ex)
        assert row["completion"] == f"### Rating ###\n{ex.rating}"
    assert stats["target"] == "rating-only" and stats["rows"] == 3
    with pytest.raises(ValueError, match="--rating-only uses no teacher output"):
        build_sft(td, "1-off", tmp_path / "x", rating_only=True)


def test_build_sft_errors_name_file_line_and_field(teacher_dir, tmp_path):
    td, _ = teacher_dir
    with pytest.raises(ValueError, match="no sample passes filter '5-class'"):
        write_jsonl(td / "samples.jsonl", [{"example_id": next(read_jsonl(td / "examples.jsonl"))["example_id"],
                                            "sample": 0, "rating_true": 5, "teacher_rating": 1, "reasoning": "x"}])
        build_sft(td, "5-class", tmp_path / "sft")
    write_jsonl(td / "samples.jsonl", [{"example_id": "nope", "sample": 0, "rating_true": 5, "teacher_rating": 1,
                                        "reasoning": "x"}])
    with pytest.raises(ValueError, match=r"samples.jsonl:1: field 'example_id' 'nope'"):
        build_sft(td, "none", tmp_path / "sft")
    write_jsonl(td / "samples.jsonl", [{"example_id": "nope", "sample": 0}])
    with pytest.raises(ValueError, match=r"samples.jsonl:1: field 'rating_true' is missing"):
        build_sft(td, "none", tmp_path / "sft")
    with pytest.raises(FileNotFoundError, match="distill sample"):
        build_sft(tmp_path / "empty", "none", tmp_path / "sft")
    with pytest.raises(ValueError, match="--filter must be one of"):
        build_sft(td, "exact", tmp_path / "sft")


def test_sample_config_needs_a_temperature():
    with pytest.raises(ValueError, match="temperature must be > 0"):
        DistillSampleConfig(data="x", temperature=0.0)
    cfg = DistillSampleConfig(data="x", samples=3, temperature=0.9, grammar=True)
    pcfg = cfg.predict_config()  # the same request building as `predict --method cot --samples M`
    assert (pcfg.method, pcfg.samples, pcfg.temperature, pcfg.grammar, pcfg.split) == ("cot", 3, 0.9, True, "train")


@pytest.mark.slow
def test_distill_sample_with_real_smollm2(small_beauty: Path, tmp_path: Path):
    app = typer.Typer()
    register(app)
    cache = tmp_path / "c.sqlite"
    data = tmp_path / "data"  # one real example, its history cut to the last 3 items: a short prompt
    first = load_examples(small_beauty / "train.jsonl")[0]
    write_jsonl(data / "train.jsonl", [replace(first, history=first.history[-3:]).to_dict()])

    def sample(out: Path) -> None:
        args = ["distill", "sample", "--data", str(data), "--model", "llamacpp/smollm2-135m",
                "--samples", "2", "--temperature", "0.8", "--max-tokens", "32", "--limit", "1", "--grammar",
                "--cache", str(cache), "--out", str(out), "--no-progress"]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output

    sample(tmp_path / "td")
    rows = list(read_jsonl(tmp_path / "td" / "samples.jsonl"))
    (example,) = load_examples(tmp_path / "td" / "examples.jsonl")
    assert example == replace(first, history=first.history[-3:])
    assert [(r["example_id"], r["sample"]) for r in rows] == [(example.example_id, 0), (example.example_id, 1)]
    for r in rows:
        assert r["raw"].startswith("### Reason ###")  # the grammar holds the format
        assert r["rating_true"] == example.rating
        assert r["teacher_rating"] in (1, 2, 3, 4, 5) and r["rating_source"] in ("parsed", "forced")
        assert r["reasoning"] and len(r["probs"]) == 5
    assert rows[0]["raw"] != rows[1]["raw"]  # two samples, not one answer twice
    run = json.loads((tmp_path / "td" / "run.json").read_text())
    assert run["step"] == "distill-sample" and run["model_id"].startswith("llamacpp/smollm2-135m@sha256:")
    assert run["ledger"]["cache_misses"] == 2
    summary = json.loads((tmp_path / "td" / "summary.json").read_text())
    assert summary["samples"] == 2 and summary["kept_per_filter"]["none"] == 2

    sample(tmp_path / "again")  # a rerun is served from the cache and writes the same rows
    assert (tmp_path / "again" / "samples.jsonl").read_bytes() == (tmp_path / "td" / "samples.jsonl").read_bytes()
    assert json.loads((tmp_path / "again" / "run.json").read_text())["ledger"]["cache_hits"] == 2

    result = CliRunner().invoke(app, ["distill", "build", "--teacher", str(tmp_path / "td"), "--filter", "none",
                                      "--out", str(tmp_path / "sft")])
    assert result.exit_code == 0, result.output
    assert "kept samples per gold label" in result.output
    built = list(read_jsonl(tmp_path / "sft" / "train.jsonl"))
    assert len(built) == 2 and all(r["completion"].endswith(f"### Rating ###\n{example.rating}") for r in built)
