"""Analysis on a synthetic study with planted correlations, and Appendix B's kappa by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from recsaver.data.records import write_jsonl
from recsaver.study.analysis import AnalysisConfig, analyze
from recsaver.study.answers import Answer
from recsaver.study.db import StudyDB, save_many

from .test_create import cli

CFG = AnalysisConfig(n_resamples=200, seed=0)


def empty_study(folder: Path, n_items: int, correct: list[bool], raters: int = 3) -> tuple[StudyDB, list[int]]:
    db = StudyDB(folder, create=True)
    db.init_study({"raters": raters, "seed": 0})
    with db.write() as c:
        run = db.add_run(c, "synthetic", "synthetic/model", "cot", "none")
        ids = [db.add_item(c, run_id=run, example_id=f"ex{i}", domain="beauty", item_label="Product",
                           rating_true=4, rating_pred=4 if correct[i] else 2, history="h", new_item="n",
                           reasoning="r", reasoning_original="r") for i in range(n_items)]
    return db, ids


def planted_metric(target: np.ndarray, rho: float, rng: np.random.Generator, others: list[np.ndarray]) -> np.ndarray:
    """A metric whose sample Pearson r with `target` is exactly rho (noise orthogonal to target and `others`)."""
    z = (target - target.mean()) / target.std()
    basis = np.column_stack([np.ones_like(z), z, *others])
    e = rng.normal(size=len(z))
    e = e - basis @ np.linalg.lstsq(basis, e, rcond=None)[0]
    e = e / e.std()
    return rho * z + math.sqrt(1 - rho * rho) * e


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> dict:
    rng = np.random.default_rng(7)
    n = 151  # the last item has answers but no NLG score
    folder = tmp_path_factory.mktemp("synthetic") / "study"
    q = rng.normal(size=n)
    correct = [i % 3 == 0 for i in range(n)]
    db, ids = empty_study(folder, n, correct)
    raters = [db.add_rater(f"r{k}")[0].rater_id for k in range(3)]
    coh = np.clip(np.rint(3 + 1.3 * q[:, None] + 0.4 * rng.normal(size=(n, 3))), 1, 5).astype(int)
    ins = np.clip(np.rint(3 + 0.6 * q[:, None] + 1.2 * rng.normal(size=(n, 3))), 1, 5).astype(int)
    faithful = q > -0.5
    rows = []
    for i in range(n):
        for k, r in enumerate(raters):
            errors = frozenset() if faithful[i] else frozenset({"stats"} | ({"arith"} if i % 4 == 0 else set()))
            rows.append((r, ids[i], Answer(int(coh[i, k]), bool(faithful[i]), int(ins[i, k]), errors)))
    save_many(db, rows, source="import")
    db.close()
    cbar, ibar = coh.mean(axis=1)[:-1], ins.mean(axis=1)[:-1]
    verified = {"bleu": 0.6, "rouge1": 0.3, "meteor": 0.0, "bertscore": -0.2}
    unverified = {"bleu": 0.3, "rouge1": 0.1, "meteor": 0.0, "bertscore": -0.4}
    scores = {}
    for name, plan in (("verified", verified), ("unverified", unverified)):
        cols = {m: 0.3 + 0.05 * planted_metric(cbar, rho, rng, [ibar] if m == "meteor" else [])
                for m, rho in plan.items()}
        order = rng.permutation(n - 1)  # rows in another order than the items: the join is by id
        write_jsonl(folder.parent / name / "text_scores.jsonl",
                    ({"example_id": f"ex{i}", "n_refs": 2, **{m: float(v[i]) for m, v in cols.items()}}
                     for i in order))
        scores[name] = cols
    result = analyze(folder, [folder.parent / "verified"], [folder.parent / "unverified"], CFG)
    return {"result": result, "coh": coh, "ins": ins, "faithful": faithful, "correct": np.array(correct),
            "scores": scores, "folder": folder, "cbar": cbar, "ibar": ibar, "verified": verified,
            "unverified": unverified}


def test_planted_nlg_correlations_are_recovered(planted: dict) -> None:
    t7 = planted["result"]["table7_correlations"]
    for metric, rho in planted["verified"].items():
        c = t7["coherence"][metric]
        assert c["n"] == 150
        assert c["pearson"]["r"] == pytest.approx(rho, abs=1e-9)
        assert c["pearson"]["ci"][0] <= rho <= c["pearson"]["ci"][1]
        assert c["spearman"]["r"] == pytest.approx(rho, abs=0.12)
        assert abs(c["kendall"]["r"]) <= abs(c["spearman"]["r"]) + 1e-9
    assert t7["coherence"]["bleu"]["pearson"]["p_value"] < 1e-10
    assert t7["coherence"]["meteor"]["pearson"]["p_value"] > 0.99
    assert t7["insightfulness"]["meteor"]["pearson"]["r"] == pytest.approx(0.0, abs=1e-9)
    expected = np.corrcoef(planted["ibar"], planted["scores"]["verified"]["bleu"])[0, 1]
    assert t7["insightfulness"]["bleu"]["pearson"]["r"] == pytest.approx(expected, abs=1e-12)


def test_planted_agreement_is_recovered(planted: dict) -> None:
    t6 = planted["result"]["table6_agreement"]
    faith = t6["faithfulness"]
    assert faith["kappa"] == pytest.approx(1.0) and faith["pearson"] == pytest.approx(1.0)
    assert faith["mean"] == pytest.approx(planted["faithful"].mean())
    assert t6["coherence"]["mean"] == pytest.approx(planted["coh"].mean())
    assert t6["coherence"]["kappa"] > 0.75 > 0.5 > t6["insightfulness"]["kappa"] > 0.1
    assert t6["coherence"]["p_value"] < 1e-10 and t6["coherence"]["n_pairs"] == 3
    for dim in ("coherence", "insightfulness"):
        v = t6[dim]
        assert v["kappa_ci"][0] <= v["kappa"] <= v["kappa_ci"][1]
        assert v["pearson_ci"][0] <= v["pearson"] <= v["pearson_ci"][1]


def test_planted_faithfulness_and_correctness_splits(planted: dict) -> None:
    t8 = planted["result"]["table8_faithfulness"]["rows"]
    f, coh = planted["faithful"], planted["coh"].mean(axis=1)
    assert t8["coherence"]["faithful_mean"] == pytest.approx(coh[f].mean())
    assert t8["coherence"]["unfaithful_mean"] == pytest.approx(coh[~f].mean())
    assert t8["coherence"]["p_value"] < 1e-10 and t8["bleu"]["difference"] > 0 and t8["bleu"]["p_value"] < 0.01
    assert t8["bleu"]["n_faithful"] + t8["bleu"]["n_unfaithful"] == 150
    t13 = planted["result"]["table13_correctness"]
    for group, mask in (("correct", planted["correct"]), ("incorrect", ~planted["correct"])):
        idx = np.flatnonzero(mask)
        assert t13[group]["n_items"] == len(idx) and t13[group]["n_answers"] == 3 * len(idx)
        assert t13[group]["err_stats"]["mean"] == pytest.approx(np.mean(~f[idx]))
        assert t13[group]["err_arith"]["mean"] == pytest.approx(np.mean(~f[idx] & (idx % 4 == 0)))
        assert t13[group]["err_info"]["mean"] == 0.0
        assert t13[group]["coherence"]["mean"] == pytest.approx(planted["coh"][idx].mean())


def test_planted_verification_effect(planted: dict) -> None:
    t9 = planted["result"]["table9_verification"]
    for metric in planted["verified"]:
        v = t9[metric]
        assert v["verified"]["r"] == pytest.approx(planted["verified"][metric], abs=1e-9)
        assert v["unverified"]["r"] == pytest.approx(planted["unverified"][metric], abs=1e-9)
    assert t9["bleu"]["difference"] == pytest.approx(0.3, abs=1e-9)
    assert 0 < t9["bleu"]["difference_ci"][0] < 0.3 < t9["bleu"]["difference_ci"][1]


def test_kappa_and_pearson_match_appendix_b_by_hand(tmp_path: Path) -> None:
    a, b = [1, 2, 3, 4, 5, 5], [1, 2, 4, 4, 5, 3]
    db, ids = empty_study(tmp_path / "s", 6, [True] * 6, raters=2)
    ra, rb = db.add_rater("a")[0].rater_id, db.add_rater("b")[0].rater_id
    save_many(db, [(r, ids[i], Answer(v[i], True, v[i])) for r, v in ((ra, a), (rb, b)) for i in range(6)], "import")
    db.close()
    # Appendix B: kappa = 1 - sum(w * O) / sum(w * E), w_ij = (i - j)^2 / (n - 1)^2, n = 5.
    obs = np.zeros((5, 5))
    for x, y in zip(a, b):
        obs[x - 1, y - 1] += 1
    exp = np.outer(obs.sum(axis=1), obs.sum(axis=0)) / obs.sum()
    w = np.array([[(i - j) ** 2 / 16 for j in range(5)] for i in range(5)])
    kappa = 1 - (w * obs).sum() / (w * exp).sum()
    t6 = analyze(tmp_path / "s", [], cfg=CFG)["table6_agreement"]
    assert t6["coherence"]["kappa"] == pytest.approx(kappa, abs=1e-12)
    assert t6["coherence"]["pearson"] == pytest.approx(np.corrcoef(a, b)[0, 1], abs=1e-12)
    assert math.isnan(t6["faithfulness"]["kappa"])  # both raters always "faithful": undefined, not 0


def test_cli_writes_a_self_contained_report(planted: dict, tmp_path: Path) -> None:
    folder = planted["folder"]
    result = CliRunner().invoke(cli(), ["study", "analyze", str(folder), "--scores", str(folder.parent / "verified"),
                                        "--scores-unverified", str(folder.parent / "unverified"), "--out",
                                        str(tmp_path / "rep"), "--resamples", "50"])
    assert result.exit_code == 0, result.output
    html = (tmp_path / "rep" / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') == 2 and "http" not in html.replace("http-equiv", "")
    md = (tmp_path / "rep" / "report.md").read_text()
    for title in ("Table 6", "Table 7", "Table 8", "Table 9", "Table 13"):
        assert title in md and title in html
    assert (tmp_path / "rep" / "plots" / "scatter.png").read_bytes()[:4] == b"\x89PNG"
    saved = json.loads((tmp_path / "rep" / "analysis.json").read_text())
    assert saved["table7_correlations"]["coherence"]["bleu"]["pearson"]["r"] == pytest.approx(0.6, abs=1e-9)
    wrong = CliRunner().invoke(cli(), ["study", "analyze", str(folder), "--scores", str(tmp_path / "nope")])
    assert wrong.exit_code == 2 and "no text scores" in wrong.output


def test_vectorised_bootstrap_statistics_equal_sklearn_and_scipy_on_each_resample() -> None:
    from recsaver.study.analysis import _pairwise, _pairwise_boot

    rng = np.random.default_rng(3)
    m = rng.integers(1, 6, size=(40, 3)).astype(float)
    m[rng.random(size=m.shape) < 0.2] = np.nan  # raters skip items
    idx = rng.integers(0, 40, size=(5, 40))
    kappa, r = _pairwise_boot(m, (1, 2, 3, 4, 5), idx)
    for row in range(5):
        pairs = _pairwise(m, (1, 2, 3, 4, 5), idx[row])
        assert kappa[row] == pytest.approx(np.mean([p[3] for p in pairs]), abs=1e-12)
        assert r[row] == pytest.approx(np.mean([p[4] for p in pairs]), abs=1e-12)
