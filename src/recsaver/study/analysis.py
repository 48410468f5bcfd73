"""Human alignment statistics (paper Section 5.1, Tables 6-9 and 13; Appendix B).

- Table 6: per dimension, the mean answer, the average pairwise quadratic-weighted Cohen's
  kappa (sklearn `cohen_kappa_score(weights="quadratic")`, Appendix B) and the average
  pairwise Pearson r. Each rater pair uses the items both rated. The p-value of the average
  r is the Pearson t-test of r-bar with n = the mean number of shared items (pairs share
  raters, so their p-values cannot be combined as independent tests).
- Table 7: per item, coherence and insightfulness averaged over raters, against each NLG
  metric: Pearson, Spearman and Kendall (scipy), with p-values.
- Table 8: items split by majority faithfulness (ties left out, counted); Welch's two-sample
  t-test (scipy `ttest_ind(equal_var=False)`) for the human and the NLG scores.
- Table 9: Table 7's coherence-Pearson with self-verified and with unverified references,
  and their difference on the same items.
- Table 13: items whose predicted rating was right vs wrong: mean coherence, share faithful,
  mean insightfulness and the share of answers naming each error type.

Confidence intervals: percentile bootstrap over ITEMS (all of an item's answers move
together), seeded. Hand-written rather than scipy.stats.bootstrap because resamples where a
statistic is undefined (a constant rater makes kappa 0/0) must be skipped, not poison the CI.
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..data.records import read_jsonl
from .answers import ERROR_KEYS
from .db import StudyDB

DIMENSIONS = ("coherence", "faithfulness", "insightfulness")
LIKERT = (1, 2, 3, 4, 5)
METRIC_ORDER = ("bleu", "rouge1", "meteor", "bertscore")


@dataclass(frozen=True)
class AnalysisConfig:
    n_resamples: int = 1000
    seed: int = 0
    level: float = 0.95


@dataclass
class StudyData:
    """Complete answers as item x rater matrices (nan: not rated), plus each item's identity."""

    item_ids: list[int]
    keys: list[tuple[int, str]]  # (run_id, example_id)
    correct: np.ndarray  # bool per item
    raters: list[str]
    scores: dict[str, np.ndarray]  # dimension or "err_<key>" -> (items, raters)


def load_study(study: Path) -> StudyData:
    with StudyDB(study) as db:
        items = db.items()
        rows = db.answer_rows(complete_only=True)
        raters = [r.name for r in db.raters()]
    index = {it.item_id: k for k, it in enumerate(items)}
    col = {name: k for k, name in enumerate(raters)}
    names = [*DIMENSIONS, *(f"err_{k}" for k in ERROR_KEYS)]
    scores = {n: np.full((len(items), len(raters)), np.nan) for n in names}
    for r in rows:
        i, j = index[r["item_id"]], col[r["rater"]]
        scores["coherence"][i, j] = r["coherence"]
        scores["faithfulness"][i, j] = r["faithful"]
        scores["insightfulness"][i, j] = r["insightfulness"]
        for k in ERROR_KEYS:
            scores[f"err_{k}"][i, j] = r[f"err_{k}"]
    correct = np.array([it.rating_pred is not None and it.rating_pred == it.rating_true for it in items])
    return StudyData([it.item_id for it in items], [(it.run_id, it.example_id) for it in items], correct,
                     raters, scores)


def load_scores(study: Path, folders: Sequence[Path], keys: list[tuple[int, str]]) -> dict[str, np.ndarray]:
    """NLG metric per item (nan where an item has no score) from text_scores.jsonl folders.

    One folder serves every run (matched by example_id); otherwise give one per run, in the
    order of the runs passed to `study create`.
    """
    with StudyDB(study) as db:
        run_ids = [r["run_id"] for r in db.runs()]
    if len(folders) not in (1, len(run_ids)):
        raise ValueError(f"give one scores folder, or one per run ({len(run_ids)} runs); got {len(folders)}")
    if len(folders) == 1 and len({eid for _, eid in keys}) < len(keys):
        raise ValueError("several runs share example ids: pass one --scores folder per run, in the runs' order")
    tables = []
    for folder in folders:
        path = Path(folder) / "text_scores.jsonl" if Path(folder).is_dir() else Path(folder)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no text scores (run `recsaver score` first)")
        tables.append({row["example_id"]: row for row in read_jsonl(path)})
    metrics = [m for m in METRIC_ORDER if any(m in row for t in tables for row in t.values())]
    out = {m: np.full(len(keys), np.nan) for m in metrics}
    for i, (run_id, eid) in enumerate(keys):
        table = tables[0] if len(tables) == 1 else tables[run_ids.index(run_id)]
        row = table.get(eid)
        for m in metrics:
            if row is not None and row.get(m) is not None:
                out[m][i] = float(row[m])
    return out


# ---- bootstrap ---------------------------------------------------------------------------------


def _resamples(n: int, cfg: AnalysisConfig, salt: int) -> np.ndarray:
    rng = np.random.default_rng([cfg.seed, salt])
    return rng.integers(0, n, size=(cfg.n_resamples, n)) if n else np.zeros((0, 0), dtype=int)


def _ci(values: Sequence[float] | np.ndarray, cfg: AnalysisConfig) -> list[float]:
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if len(v) == 0:
        return [math.nan, math.nan]
    a = 100 * (1 - cfg.level) / 2
    return [float(x) for x in np.percentile(v, [a, 100 - a])]


def _boot(stat: Callable[[np.ndarray], float], n: int, cfg: AnalysisConfig, salt: int) -> list[float]:
    return _ci([stat(idx) for idx in _resamples(n, cfg, salt)], cfg)


def _f(x: Any) -> float:
    return float(x) if x is not None else math.nan


# ---- Table 6 -----------------------------------------------------------------------------------


def _pairwise(m: np.ndarray, labels: Sequence[int], rows: np.ndarray) -> list[tuple[int, int, int, float, float, float]]:
    """(a, b, n, kappa, r, p) for every rater pair with 2+ shared items among `rows`."""
    from scipy.stats import pearsonr
    from sklearn.metrics import cohen_kappa_score

    out = []
    sub = m[rows]
    for a, b in itertools.combinations(range(m.shape[1]), 2):
        both = ~np.isnan(sub[:, a]) & ~np.isnan(sub[:, b])
        x, y = sub[both, a], sub[both, b]
        if len(x) < 2:
            continue
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            kappa = float(cohen_kappa_score(x.astype(int), y.astype(int), weights="quadratic", labels=list(labels)))
            r, p = (math.nan, math.nan) if x.std() == 0 or y.std() == 0 else map(float, pearsonr(x, y))
        out.append((a, b, len(x), kappa, r, p))
    return out


def _pairwise_boot(m: np.ndarray, labels: Sequence[int], idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average pairwise quadratic kappa and Pearson r on every resample (row of idx), vectorised.

    Hand-written because sklearn's cohen_kappa_score costs milliseconds a call (input checks),
    times resamples x pairs x dimensions; tests pin it to sklearn on the full sample.
    """
    k = len(labels)
    lab = {v: j for j, v in enumerate(labels)}
    w = np.array([[(i - j) ** 2 for j in range(k)] for i in range(k)], dtype=float)
    kappas, rs = [], []
    for a, b in itertools.combinations(range(m.shape[1]), 2):
        x, y = m[idx, a], m[idx, b]
        both = ~np.isnan(x) & ~np.isnan(y)
        if not both.any():
            continue
        xi = np.where(both, np.vectorize(lambda v: lab.get(v, 0))(np.nan_to_num(x)), 0)
        yi = np.where(both, np.vectorize(lambda v: lab.get(v, 0))(np.nan_to_num(y)), 0)
        rows = np.repeat(np.arange(len(idx)), idx.shape[1])
        flat = (rows * k * k + xi.ravel() * k + yi.ravel())[both.ravel()]
        obs = np.bincount(flat, minlength=len(idx) * k * k).reshape(len(idx), k, k)
        n = obs.sum(axis=(1, 2))
        with np.errstate(all="ignore"):
            exp = obs.sum(axis=2)[:, :, None] * obs.sum(axis=1)[:, None, :] / n[:, None, None]
            kappas.append(1 - (obs * w).sum(axis=(1, 2)) / (exp * w).sum(axis=(1, 2)))
            wt = both.astype(float)
            xs, ys = np.where(both, x, 0.0), np.where(both, y, 0.0)
            mx, my = (xs * wt).sum(1) / n, (ys * wt).sum(1) / n
            dx, dy = (xs - mx[:, None]) * wt, (ys - my[:, None]) * wt
            r = (dx * dy).sum(1) / np.sqrt((dx ** 2).sum(1) * (dy ** 2).sum(1))
        r[n < 2] = np.nan
        kappas[-1][n < 2] = np.nan
        rs.append(r)
    if not kappas:
        return np.full(len(idx), np.nan), np.full(len(idx), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.stack(kappas), axis=0), np.nanmean(np.stack(rs), axis=0)


def _mean_of(values: list[float]) -> float:
    v = [x for x in values if not math.isnan(x)]
    return float(np.mean(v)) if v else math.nan


def _r_pvalue(r: float, n: float) -> float:
    from scipy.stats import t

    if math.isnan(r) or n <= 2:
        return math.nan
    if abs(r) >= 1:
        return 0.0
    stat = r * math.sqrt((n - 2) / (1 - r * r))
    return float(2 * t.sf(abs(stat), n - 2))


def agreement(data: StudyData, cfg: AnalysisConfig) -> dict[str, Any]:
    """Table 6."""
    out: dict[str, Any] = {}
    n_items = len(data.item_ids)
    for salt, dim in enumerate(DIMENSIONS):
        m = data.scores[dim]
        labels = (0, 1) if dim == "faithfulness" else LIKERT
        all_rows = np.arange(n_items)
        pairs = _pairwise(m, labels, all_rows)
        kappa = _mean_of([p[3] for p in pairs])
        r = _mean_of([p[4] for p in pairs])
        overlap = float(np.mean([p[2] for p in pairs])) if pairs else 0.0
        answers = m[~np.isnan(m)]

        def boot_mean(idx: np.ndarray, m: np.ndarray = m) -> float:
            v = m[idx]
            return float(np.nanmean(v)) if np.any(~np.isnan(v)) else math.nan

        kappa_ci, r_ci = _pairwise_boot(m, labels, _resamples(n_items, cfg, 100 + salt))
        out[dim] = {
            "mean": float(answers.mean()) if len(answers) else math.nan,
            "mean_ci": _boot(boot_mean, n_items, cfg, 200 + salt),
            "kappa": kappa, "kappa_ci": _ci(kappa_ci, cfg),
            "pearson": r, "pearson_ci": _ci(r_ci, cfg), "p_value": _r_pvalue(r, overlap),
            "n_answers": int(len(answers)), "n_pairs": len(pairs), "mean_shared_items": overlap,
            "pairs": [{"raters": [data.raters[a], data.raters[b]], "n": n, "kappa": k, "pearson": rr, "p_value": p}
                      for a, b, n, k, rr, p in pairs],
        }
    return out


# ---- Tables 7 and 9 ----------------------------------------------------------------------------


def item_means(data: StudyData, dim: str) -> np.ndarray:
    m = data.scores[dim]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(m, axis=1)


def _rowwise_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of each row pair (resamples x n); nan where a row is constant."""
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    with np.errstate(all="ignore"):
        r = (xc * yc).sum(axis=1) / np.sqrt((xc ** 2).sum(axis=1) * (yc ** 2).sum(axis=1))
    return r


def correlate(x: np.ndarray, y: np.ndarray, cfg: AnalysisConfig, salt: int) -> dict[str, Any]:
    """Pearson, Spearman and Kendall of x and y (pairs with a nan dropped), with bootstrap CIs."""
    from scipy.stats import kendalltau, pearsonr, rankdata, spearmanr

    ok = ~np.isnan(x) & ~np.isnan(y)
    x, y = x[ok], y[ok]
    n = len(x)
    res: dict[str, Any] = {"n": int(n)}
    if n < 3 or x.std() == 0 or y.std() == 0:
        for name in ("pearson", "spearman", "kendall"):
            res[name] = {"r": math.nan, "p_value": math.nan, "ci": [math.nan, math.nan]}
        return res
    idx = _resamples(n, cfg, salt)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        boot_p = _rowwise_pearson(x[idx], y[idx])
        boot_s = _rowwise_pearson(rankdata(x[idx], axis=1), rankdata(y[idx], axis=1))
        boot_k = [kendalltau(x[i], y[i])[0] for i in idx]
        for name, fn, boot in (("pearson", pearsonr, boot_p), ("spearman", spearmanr, boot_s),
                               ("kendall", kendalltau, boot_k)):
            stat, p = fn(x, y)
            res[name] = {"r": _f(stat), "p_value": _f(p), "ci": _ci(boot, cfg)}
    return res


def nlg_correlations(data: StudyData, scores: dict[str, np.ndarray], cfg: AnalysisConfig) -> dict[str, Any]:
    """Table 7."""
    out: dict[str, Any] = {}
    for d, dim in enumerate(("coherence", "insightfulness")):
        human = item_means(data, dim)
        out[dim] = {m: correlate(human, v, cfg, 300 + 10 * d + k) for k, (m, v) in enumerate(scores.items())}
    return out


def verification_effect(data: StudyData, verified: dict[str, np.ndarray], unverified: dict[str, np.ndarray],
                        cfg: AnalysisConfig) -> dict[str, Any]:
    """Table 9: coherence-Pearson with self-verified vs unverified references, on the same items."""
    human = item_means(data, "coherence")
    out: dict[str, Any] = {}
    for k, m in enumerate(x for x in verified if x in unverified):
        ok = ~np.isnan(human) & ~np.isnan(verified[m]) & ~np.isnan(unverified[m])
        h, v, u = human[ok], verified[m][ok], unverified[m][ok]
        entry: dict[str, Any] = {"n": int(ok.sum())}
        for name, s in (("verified", v), ("unverified", u)):
            c = correlate(h, s, cfg, 400 + k)
            entry[name] = c["pearson"]
        idx = _resamples(len(h), cfg, 450 + k)
        with np.errstate(all="ignore"):
            diff = _rowwise_pearson(v[idx], h[idx]) - _rowwise_pearson(u[idx], h[idx]) if len(h) else []
        entry["difference"] = entry["verified"]["r"] - entry["unverified"]["r"]
        entry["difference_ci"] = _ci(diff, cfg)
        out[m] = entry
    return out


# ---- Table 8 -----------------------------------------------------------------------------------


def faithful_items(data: StudyData) -> np.ndarray:
    """1.0 faithful, 0.0 unfaithful by majority of raters; nan for ties and unrated items."""
    share = item_means(data, "faithfulness")
    out = np.where(share > 0.5, 1.0, np.where(share < 0.5, 0.0, np.nan))
    out[np.isnan(share)] = np.nan
    return out


def faithfulness_tests(data: StudyData, scores: dict[str, np.ndarray], cfg: AnalysisConfig) -> dict[str, Any]:
    """Table 8: Welch's t-test of each score between faithful and unfaithful items."""
    from scipy.stats import ttest_ind

    label = faithful_items(data)
    values = {"coherence": item_means(data, "coherence"), "insightfulness": item_means(data, "insightfulness"),
              **scores}
    rows: dict[str, Any] = {}
    for k, (name, v) in enumerate(values.items()):
        a = v[(label == 1) & ~np.isnan(v)]
        b = v[(label == 0) & ~np.isnan(v)]
        entry: dict[str, Any] = {"faithful_mean": _f(a.mean()) if len(a) else math.nan,
                                 "unfaithful_mean": _f(b.mean()) if len(b) else math.nan,
                                 "n_faithful": int(len(a)), "n_unfaithful": int(len(b))}
        if len(a) >= 2 and len(b) >= 2 and (a.std() > 0 or b.std() > 0):
            t, p = ttest_ind(a, b, equal_var=False)
            entry.update(t=_f(t), p_value=_f(p))
        else:
            entry.update(t=math.nan, p_value=math.nan)
        if len(a) and len(b):
            ia, ib = _resamples(len(a), cfg, 500 + k), _resamples(len(b), cfg, 550 + k)
            entry["difference_ci"] = _ci(a[ia].mean(axis=1) - b[ib].mean(axis=1), cfg)
        else:
            entry["difference_ci"] = [math.nan, math.nan]
        entry["difference"] = entry["faithful_mean"] - entry["unfaithful_mean"]
        rows[name] = entry
    return {"ties_excluded": int(np.sum(np.isnan(label) & ~np.isnan(item_means(data, "faithfulness")))),
            "rows": rows}


# ---- Table 13 ----------------------------------------------------------------------------------


def correctness_split(data: StudyData, cfg: AnalysisConfig) -> dict[str, Any]:
    """Table 13: answer-level means and error-type shares for correct vs incorrect predictions."""
    names = [*DIMENSIONS, *(f"err_{k}" for k in ERROR_KEYS)]
    out: dict[str, Any] = {}
    for g, (group, mask) in enumerate((("incorrect", ~data.correct), ("correct", data.correct))):
        entry: dict[str, Any] = {"n_items": int(mask.sum())}
        entry["n_answers"] = int((~np.isnan(data.scores["coherence"][mask])).sum())
        for k, name in enumerate(names):
            m = data.scores[name][mask]
            sums, counts = np.nansum(m, axis=1), (~np.isnan(m)).sum(axis=1)
            total = counts.sum()
            value = float(sums.sum() / total) if total else math.nan
            idx = _resamples(len(sums), cfg, 600 + 20 * g + k)
            with np.errstate(all="ignore"):
                boot = sums[idx].sum(axis=1) / counts[idx].sum(axis=1) if len(sums) else []
            entry[name] = {"mean": value, "ci": _ci(boot, cfg)}
        out[group] = entry
    return out


def analyze(study: Path, scores: Sequence[Path], unverified: Sequence[Path] = (),
            cfg: AnalysisConfig = AnalysisConfig()) -> dict[str, Any]:
    """Every table as one JSON-ready dict (report.py renders it)."""
    data = load_study(study)
    if not any(np.any(~np.isnan(m)) for m in data.scores.values()):
        raise ValueError(f"{study}: no complete answers yet")
    nlg = load_scores(study, scores, data.keys) if scores else {}
    result: dict[str, Any] = {
        "n_items": len(data.item_ids),
        "n_items_rated": int(np.sum(~np.isnan(item_means(data, "coherence")))),
        "n_answers": int(np.sum(~np.isnan(data.scores["coherence"]))),
        "raters": data.raters,
        "config": {"n_resamples": cfg.n_resamples, "seed": cfg.seed, "level": cfg.level},
        "table6_agreement": agreement(data, cfg),
        "table13_correctness": correctness_split(data, cfg),
    }
    if nlg:
        result["metrics"] = list(nlg)
        result["n_items_scored"] = int(np.sum(~np.isnan(next(iter(nlg.values())))))
        result["table7_correlations"] = nlg_correlations(data, nlg, cfg)
        result["table8_faithfulness"] = faithfulness_tests(data, nlg, cfg)
        if unverified:
            result["table9_verification"] = verification_effect(
                data, nlg, load_scores(study, unverified, data.keys), cfg)
    else:
        result["table8_faithfulness"] = faithfulness_tests(data, {}, cfg)
    return result
