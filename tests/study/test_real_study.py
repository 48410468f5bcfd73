"""A study built from real SmolLM2 predictions, rated by scripted raters through the real app, analysed.

The NLG scores come from `recsaver.steps.score` on those predictions, against reference pools
built here from the same users' real review texts (all history reviews as the "unverified"
pool; only the reviews whose rating equals the gold rating as the "verified" one), which keeps
the test to the two model calls of the `real_run` fixture.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from recsaver.data.records import load_examples, load_predictions, write_jsonl
from recsaver.steps.score import run_score
from recsaver.study.app import create_app

from .test_create import cli

pytestmark = pytest.mark.slow


def scripted_answer(page: str, k: int) -> dict[str, object]:
    """Rater k reads the page: longer reasoning is more coherent; a number absent from the history is wrong."""
    reasoning = re.search(r'<div class="reasoning" id="reasoning">(.*?)</div>', page, re.S).group(1)
    history = re.search(r'<div class="history">(.*?)</div>\s*<h2>', page, re.S).group(1)
    sentences = max(1, len(re.findall(r"[.!?](\s|$)", reasoning)))
    coherence = max(1, min(5, 1 + sentences + (k - 1)))
    made_up = [n for n in re.findall(r"\b\d+\b", reasoning) if n not in history]
    faithful = not made_up and k != 2
    return {"coherence": str(coherence), "faithfulness": "yes" if faithful else "no",
            "insightfulness": str(2 + (k == 0) + (len(reasoning) > 80)),
            "errors": [] if faithful else (["stats"] if made_up else ["other"]), "note": f"scripted {k}"}


def test_real_predictions_study_end_to_end(real_run: Path, small_beauty: Path, tmp_path: Path) -> None:
    preds = [p for p in load_predictions(real_run / "predictions.jsonl") if (p.reasoning or "").strip()]
    assert preds, "the real model gave no reasoning text"
    examples = {e.example_id: e for e in load_examples(small_beauty / "test.jsonl")}
    for name, keep in (("refs_all", lambda h, e: True), ("refs_verified", lambda h, e: h.rating == e.rating)):
        write_jsonl(tmp_path / name / "references.jsonl", [
            {"example_id": p.example_id,
             "references": [h.review_text for h in examples[p.example_id].history
                            if h.review_text and keep(h, examples[p.example_id])]} for p in preds])
    run_score(real_run, tmp_path / "refs_verified", ["bleu", "rouge1"], tmp_path / "scores_verified", n_resamples=50)
    run_score(real_run, tmp_path / "refs_all", ["bleu", "rouge1"], tmp_path / "scores_all", n_resamples=50)

    app = cli()
    study = tmp_path / "study"
    made = CliRunner().invoke(app, ["study", "create", "--predictions", str(real_run), "--references",
                                    str(tmp_path / "refs_all"), "--per-domain", "50", "--raters", "3",
                                    "--out", str(study)])
    assert made.exit_code == 0, made.output
    links = []
    for name in ("ann", "bob", "cy"):
        added = CliRunner().invoke(app, ["study", "raters", "add", str(study), name, "--base-url", "http://x"])
        assert added.exit_code == 0, added.output
        links.append(re.search(r"http://x(/login/\S+)", added.output).group(1))

    given: list[dict[str, object]] = []
    for k, link in enumerate(links):
        client = TestClient(create_app(study), base_url="http://127.0.0.1")
        client.get(link)
        for pos in range(1, len(preds) + 1):
            page = client.get(f"/item/{pos}").text
            assert "### Rating" not in page
            csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)
            answer = scripted_answer(page, k)
            r = client.post(f"/item/{pos}", data={**answer, "csrf": csrf}, headers={"X-Autosave": "1"})
            assert r.status_code == 200 and r.json()["complete"], r.text
            given.append(answer)

    out = tmp_path / "report"
    analyzed = CliRunner().invoke(app, ["study", "analyze", str(study), "--scores", str(tmp_path / "scores_verified"),
                                        "--scores-unverified", str(tmp_path / "scores_all"), "--out", str(out),
                                        "--resamples", "100"])
    assert analyzed.exit_code == 0, analyzed.output
    result = json.loads((out / "analysis.json").read_text())
    assert result["n_items"] == len(preds) and result["n_answers"] == 3 * len(preds)
    t6 = result["table6_agreement"]
    assert t6["coherence"]["mean"] == pytest.approx(sum(int(a["coherence"]) for a in given) / len(given))
    assert t6["faithfulness"]["mean"] == pytest.approx(sum(a["faithfulness"] == "yes" for a in given) / len(given))
    t13 = result["table13_correctness"]
    n_correct = sum(p.rating_pred == p.rating_true for p in preds)
    assert (t13["correct"]["n_items"], t13["incorrect"]["n_items"]) == (n_correct, len(preds) - n_correct)
    scored = [json.loads(x) for x in (tmp_path / "scores_verified" / "text_scores.jsonl").read_text().splitlines()]
    assert result["table7_correlations"]["coherence"]["bleu"]["n"] == len(scored)
    assert set(result["table8_faithfulness"]["rows"]) == {"coherence", "insightfulness", "bleu", "rouge1"}
    html = (out / "report.html").read_text()
    assert 'src="data:image/png;base64,' in html and "Table 13" in html
