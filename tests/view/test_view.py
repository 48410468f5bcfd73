"""`recsaver view` over real SmolLM2 runs: the JSON endpoints (paging, filters, sort, one example), 10,000
rows paged on the server, experiment folders, the CLI, and the report's example gallery."""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from recsaver.cli import app as cli_app
from recsaver.data.records import load_examples
from recsaver.prompts import PromptBuilder, PromptOptions
from recsaver.view.app import create_app
from recsaver.view.detail import strike_segments

from .conftest import N_BIG, XSS, read_jsonl, write_jsonl

slow = pytest.mark.slow


def client(*runs: Path) -> TestClient:
    return TestClient(create_app(list(runs)))


def status_of(p: dict) -> str:
    if p["status"] == "failed":
        return "failed"
    if p["rating_pred"] is None:
        return "unparsed"
    return "forced" if p["rating_source"] == "forced" else "ok"


def test_strike_segments_keeps_every_character() -> None:
    text = "The user gave it a 4. They like serums.\n\nThe rating of 4 fits."
    pieces = strike_segments(text, ["The user gave it a 4.", "The rating of 4 fits.", "Not in the text."])
    assert "".join(t for t, _ in pieces[:-1]) == text
    assert [t for t, struck in pieces if struck] == ["The user gave it a 4.", "The rating of 4 fits.",
                                                     " Not in the text."]
    assert strike_segments("plain", []) == [("plain", False)]


@slow
def test_list_pages_filters_and_sorts(view_runs: dict[str, Path]) -> None:
    c = client(view_runs["A"], view_runs["B"], view_runs["R"])
    runs = c.get("/api/runs").json()
    assert [r["kind"] for r in runs["runs"]] == ["predict", "predict", "references"]
    assert [r["title"] for r in runs["runs"][:2]] == ["smollm2-135m cot", "smollm2-135m direct"]
    assert {"bleu", "rouge1", "n_refs", "pool_size"} <= set(runs["metrics"]) and runs["domains"] == ["beauty"]
    a = read_jsonl(view_runs["A"] / "predictions.jsonl")
    b = read_jsonl(view_runs["B"] / "predictions.jsonl")

    every = c.get("/api/examples").json()
    assert every["total"] == 9 and every["pages"] == 1
    assert [r["example_id"] for r in every["rows"]] == sorted(r["example_id"] for r in every["rows"])
    paged = [c.get("/api/examples", params={"size": 2, "page": k}).json() for k in (1, 2, 3, 4, 5)]
    assert [len(p["rows"]) for p in paged] == [2, 2, 2, 2, 1] and paged[0]["pages"] == 5
    assert [r for p in paged for r in p["rows"]] == every["rows"]

    def ids(**params: object) -> list[tuple[int, str]]:
        got = c.get("/api/examples", params={**params, "size": 500}).json()
        assert got["total"] == len(got["rows"]), got
        return [(r["run"], r["example_id"]) for r in got["rows"]]

    gold = a[0]["rating_true"]
    assert ids(gold=gold) == sorted([(0, p["example_id"]) for p in a if p["rating_true"] == gold]
                                    + [(1, p["example_id"]) for p in b if p["rating_true"] == gold]
                                    + [(2, p["example_id"]) for p in a if p["rating_true"] == gold],
                                    key=lambda t: (t[1], t[0]))
    assert ids(run=1) == [(1, p["example_id"]) for p in sorted(b, key=lambda p: p["example_id"])]
    pred = b[0]["rating_pred"]
    assert {e for _, e in ids(run=1, pred=pred)} == {p["example_id"] for p in b if p["rating_pred"] == pred}
    wrong = {p["example_id"] for p in a if p["rating_pred"] != p["rating_true"]}
    assert {e for _, e in ids(run=0, correct="no")} == wrong
    assert {e for _, e in ids(run=0, correct="yes")} == {p["example_id"] for p in a} - wrong
    for status in ("ok", "forced", "unparsed", "failed"):
        assert {e for r, e in ids(status=status) if r < 2} == (
            {(p["example_id"]) for p in a if status_of(p) == status} | {p["example_id"] for p in b if
                                                                        status_of(p) == status}), status
    assert ids(domain="beauty") == ids() and ids(domain="movies") == []

    scores = {s["example_id"]: s for s in read_jsonl(view_runs["A"] / "text_scores.jsonl")}
    by_bleu = c.get("/api/examples", params={"sort": "bleu", "order": "desc"}).json()["rows"]
    assert [r["example_id"] for r in by_bleu[:3]] == sorted(scores, key=lambda e: -scores[e]["bleu"])
    assert all(r["run"] == 0 for r in by_bleu[:3]) and all("bleu" not in r["metrics"] for r in by_bleu[3:])
    assert by_bleu[0]["metrics"]["rouge1"] == pytest.approx(scores[by_bleu[0]["example_id"]]["rouge1"])
    middle = sorted(s["bleu"] for s in scores.values())[1]
    assert [e for _, e in ids(metric="bleu", min=middle)] == sorted(e for e, s in scores.items() if s["bleu"] >= middle)
    assert c.get("/api/examples", params={"sort": "gold", "order": "desc"}).json()["rows"][0]["gold"] == max(
        p["rating_true"] for p in a)

    for bad in ({"sort": "nope"}, {"gold": "x"}, {"size": 501}, {"metric": "meteor"}, {"correct": "maybe"}):
        answer = c.get("/api/examples", params=bad)
        assert answer.status_code == 422 and answer.json()["error"], bad


@slow
def test_one_example_with_candidates_scores_and_prompt(view_runs: dict[str, Path]) -> None:
    c = client(view_runs["A"], view_runs["B"], view_runs["R"])
    refs = read_jsonl(view_runs["R"] / "references.jsonl")
    row = max(refs, key=lambda r: sum(len(c["removed_sentences"]) for c in r["candidates"]))
    eid = row["example_id"]
    a = {p["example_id"]: p for p in read_jsonl(view_runs["A"] / "predictions.jsonl")}[eid]
    ex = c.get(f"/api/example/{eid}").json()
    assert ex["gold"] == row["rating"] and [p["kind"] for p in ex["panels"]] == ["predict", "predict", "references"]
    cot, direct, references = ex["panels"]
    assert cot["reasoning"] == a["reasoning"] and cot["pred"] == a["rating_pred"] and cot["status"] == status_of(a)
    assert [b["p"] for b in cot["bars"]] == pytest.approx(a["probs"]) and max(b["width"] for b in cot["bars"]) == 100
    score = {s["example_id"]: s for s in read_jsonl(view_runs["A"] / "text_scores.jsonl")}[eid]
    assert cot["metrics"]["bleu"] == pytest.approx(score["bleu"]) and direct["metrics"] == {}
    # The prompt is the run's own, rebuilt with the PromptBuilder from the data folder and the run's method.
    example = {e.example_id: e for e in load_examples(view_runs["data"] / "test.jsonl")}[eid]
    for panel, method in ((cot, "cot"), (direct, "direct")):
        assert panel["prompt"]["text"] == PromptBuilder("beauty", PromptOptions(method=method)).rating_prompt(example)
    assert cot["prompt"]["text"] != direct["prompt"]["text"]
    assert references["pool"] == row["references"] and len(references["candidates"]) == len(row["candidates"])
    for shown, stored in zip(references["candidates"], row["candidates"]):
        assert shown["verify_rating"] == stored["verify_rating"] and shown["kept"] == stored["kept"]
        assert shown["negative"] == stored["negative"] and shown["target"] == stored["target"]
        assert [t for t, struck in shown["segments"] if struck] == [s.strip() for s in stored["removed_sentences"]]
        assert "".join(t for t, _ in shown["segments"]) == stored["text"]
    only = c.get(f"/api/example/{eid}", params=[("runs", 0), ("runs", 1)]).json()
    assert [p["run"] for p in only["panels"]] == [0, 1] and [a["shown"] for a in only["available"]] == [
        True, True, False]
    page = c.get(f"/example/{eid}")
    assert page.status_code == 200 and page.text.count('class="bar-row') >= 10
    assert "Content-Security-Policy" in page.headers and "script-src 'self'" in page.headers["Content-Security-Policy"]
    missing = c.get("/example/nope")
    assert missing.status_code == 404 and "nope" in missing.text
    assert c.get("/api/example/nope").status_code == 404


@slow
def test_prompt_says_when_the_data_folder_is_gone(view_runs: dict[str, Path], tmp_path: Path) -> None:
    moved = tmp_path / "moved"
    shutil.copytree(view_runs["A"], moved)
    run = json.loads((moved / "run.json").read_text())
    run["config"]["data"] = str(tmp_path / "deleted-data")
    (moved / "run.json").write_text(json.dumps(run))
    eid = read_jsonl(moved / "predictions.jsonl")[0]["example_id"]
    panel = client(moved).get(f"/api/example/{eid}").json()["panels"][0]
    assert panel["prompt"]["text"] is None and "deleted-data is gone" in panel["prompt"]["note"]
    assert panel["reasoning"]  # the run's own outputs are still shown


@slow
def test_ten_thousand_rows_are_paged_on_the_server(big_run: Path) -> None:
    c = client(big_run)
    front = c.get("/")
    assert front.status_code == 200 and "big00001" not in front.text and len(front.text) < 20_000
    seen: list[str] = []
    for page in range(1, 21):
        got = c.get("/api/examples", params={"page": page, "size": 500}).json()
        assert got["total"] == N_BIG and got["pages"] == 20 and len(got["rows"]) == 500
        seen += [r["example_id"] for r in got["rows"]]
    assert seen == [f"big{k:05d}" for k in range(N_BIG)]
    first = c.get("/api/examples", params={"page": 1}).json()
    assert len(first["rows"]) == 50 and len(json.dumps(first)) < 30_000  # one page travels, not the run
    assert c.get("/api/examples", params={"page": 201}).json()["rows"] == []
    fives = c.get("/api/examples", params={"gold": 5, "size": 100, "page": 3}).json()
    assert fives["total"] == N_BIG // 5 and all(r["gold"] == 5 for r in fives["rows"])
    scored = c.get("/api/examples", params={"metric": "bleu", "sort": "bleu", "order": "desc", "size": 10}).json()
    assert scored["total"] == N_BIG // 2
    values = [r["metrics"]["bleu"] for r in scored["rows"]]
    assert values == sorted(values, reverse=True)
    # The data folder has none of these ids: the page says so instead of a prompt.
    panel = c.get("/api/example/big00003").json()["panels"][0]
    assert panel["prompt"]["text"] is None and "big00003 is not in" in panel["prompt"]["note"]


@slow
def test_model_text_is_escaped(big_run: Path) -> None:
    page = client(big_run).get("/example/big00007")
    assert page.status_code == 200
    assert XSS not in page.text and "&lt;script&gt;alert(" in page.text and "<b>bold?</b>" not in page.text


@slow
def test_an_experiment_folder_shows_its_cells_with_scores_joined(view_runs: dict[str, Path], tmp_path: Path) -> None:
    """An experiment's cells are the runs; a score cell inside a predict cell joins that run by example_id."""
    exp = tmp_path / "exp"
    cells = [("beauty/cot-none", "predict", view_runs["A"], ("predictions.jsonl", "run.json", "metrics.json")),
             ("beauty/cot-none/score-none", "score", view_runs["A"], ("text_scores.jsonl", "text_metrics.json")),
             ("beauty/references-none", "references", view_runs["R"], ("references.jsonl", "summary.json",
                                                                       "run.json"))]
    for name, kind, source, files in cells:
        (exp / name).mkdir(parents=True)
        for f in files:
            shutil.copy(source / f, exp / name / f)
        (exp / name / "cell.json").write_text(json.dumps({"name": name, "kind": kind, "domain": "beauty"}))
    (exp / "experiment.json").write_text(json.dumps({"name": "mini", "config": {}, "cells": [
        {"name": n, "kind": k, "domain": "beauty"} for n, k, _, _ in cells]}))
    c = client(exp)
    runs = c.get("/api/runs").json()["runs"]
    assert [(r["label"], r["kind"]) for r in runs] == [("mini/beauty/cot-none", "predict"),
                                                       ("mini/beauty/references-none", "references")]
    assert runs[0]["scores"] == [str(exp / "beauty/cot-none/score-none")]
    rows = c.get("/api/examples", params={"run": 0, "sort": "rouge1"}).json()["rows"]
    assert len(rows) == 3 and all("rouge1" in r["metrics"] for r in rows)


@slow
def test_cli_view_serves_on_localhost(view_runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    calls: list[dict] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append({"app": app, **kw}))
    result = CliRunner().invoke(cli_app, ["view", str(view_runs["A"]), str(view_runs["R"]), "--no-open"])
    assert result.exit_code == 0, result.output
    (call,) = calls
    assert call["host"] == "127.0.0.1" and call["port"] > 0
    assert f"http://127.0.0.1:{call['port']}/" in result.output and "2 run(s), 6 rows" in result.output
    assert TestClient(call["app"]).get("/api/examples").json()["total"] == 6
    bad = CliRunner().invoke(cli_app, ["view", str(view_runs["data"]), "--no-open"])
    assert bad.exit_code == 2 and "not a run folder" in " ".join(bad.output.split())
    assert "--no-open" in CliRunner().invoke(cli_app, ["view", "--help"], env={"COLUMNS": "200"}).output


@slow
def test_report_gallery_is_chosen_by_the_seed(view_runs: dict[str, Path], tmp_path: Path) -> None:
    from markupsafe import escape

    from recsaver.reports.html import build_report

    out = tmp_path / "X.html"
    result = CliRunner().invoke(cli_app, ["report", str(view_runs["A"]), str(view_runs["B"]), "--out", str(out),
                                          "--resamples", "50"])
    assert result.exit_code == 0, result.output
    html, md = out.read_text(), out.with_suffix(".md").read_text()
    gallery = html[html.index('id="gallery"'):html.index('id="configs"')]
    a = sorted(read_jsonl(view_runs["A"] / "predictions.jsonl"), key=lambda p: p["example_id"])
    assert gallery.count('class="example"') == 6  # 3 per predict run (the default K), all of these 3
    for p in a:
        assert str(escape(p["reasoning"])) in gallery
    assert "## Examples" in md and md.count("- `") == 6
    assert md.index("## Examples") < md.index("## Configs")

    def chosen(seed: int, run: Path) -> list[str]:
        build_report([run], tmp_path / f"g{seed}.html", resamples=10, seed=seed, gallery=1)
        text = (tmp_path / f"g{seed}.html").read_text()
        return re.findall(r'class="example" data-example-id="([0-9a-f]+)"', text)

    for seed in (0, 1, 2, 3):
        expected = [a[random.Random(seed).sample(range(len(a)), 1)[0]]["example_id"]]
        assert chosen(seed, view_runs["A"]) == expected == chosen(seed, view_runs["B"])  # same examples per method
        assert chosen(seed, view_runs["A"]) == expected  # same seed, same examples

    marked = tmp_path / "marked"
    shutil.copytree(view_runs["A"], marked)
    write_jsonl(marked / "predictions.jsonl", [{**p, "reasoning": XSS} for p in a])
    html_path, md_path = build_report([marked], tmp_path / "m.html", resamples=10)
    assert XSS not in html_path.read_text() and "&lt;script&gt;alert(" in html_path.read_text()
    assert "<script>" not in md_path.read_text()
