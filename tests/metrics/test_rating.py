"""Rating metrics: hand-computed values, the worst-case rule, AUC scores, CIs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recsaver.data.records import Prediction
from recsaver.metrics import METRIC_NAMES, MetricValue, point_metrics, rating_metrics, substitute
from recsaver.metrics.rating import _bootstrap_stats, _resample_indices

# The running example: 8 predictions, #7 unparseable (truth 5 -> worst rating 1).
#   idx  true  pred   substituted pred
#    1    5     5      5
#    2    4     5      5
#    3    4     3      3
#    4    2     1      1
#    5    1     2      2
#    6    3     4      4
#    7    5     None   1   (5 > 3, so worst = 1)
#    8    2     2      2
TRUE = [5, 4, 4, 2, 1, 3, 5, 2]
PRED = [5, 5, 3, 1, 2, 4, None, 2]
SUBST = [5, 5, 3, 1, 2, 4, 1, 2]

# Probabilities P(1..5) for the probs variant; binary score s = P(4) + P(5).
PROBS = [
    (0.0, 0.0, 0.1, 0.2, 0.7),  # s = 0.9
    (0.0, 0.0, 0.2, 0.3, 0.5),  # s = 0.8
    (0.0, 0.1, 0.5, 0.3, 0.1),  # s = 0.4
    (0.6, 0.3, 0.1, 0.0, 0.0),  # s = 0.0
    (0.2, 0.5, 0.2, 0.1, 0.0),  # s = 0.1
    (0.1, 0.2, 0.4, 0.2, 0.1),  # s = 0.3
    (0.0, 0.0, 0.0, 0.1, 0.9),  # unparseable: ignored, becomes one-hot on 1 -> s = 0.0
    (0.1, 0.6, 0.2, 0.1, 0.0),  # s = 0.1
]


def _preds(probs=None):
    return [
        Prediction(f"e{i}", t, p, None if probs is None else probs[i])
        for i, (t, p) in enumerate(zip(TRUE, PRED))
    ]


def test_hand_computed_rating_scored():
    r = rating_metrics(_preds(), n_resamples=200)
    m = {k: v["value"] for k, v in r["metrics"].items()}
    assert r["n"] == 8 and r["n_unparsed"] == 1 and r["unparsed_share"] == pytest.approx(1 / 8)
    assert r["config"]["auc_scores"] == "rating"
    # binary truth (>3): 1 1 1 0 0 0 1 0 ; binary pred: 1 1 0 0 0 1 0 0
    # agree on #1 #2 #4 #5 #8 -> 5/8
    assert m["binary_acc"] == pytest.approx(5 / 8)
    # TP = #1 #2 = 2, FP = #6 = 1, FN = #3 #7 = 2 -> F1 = 2*2 / (2*2 + 1 + 2) = 4/7
    assert m["binary_f1"] == pytest.approx(4 / 7)
    # exact matches: #1 (5=5), #8 (2=2) -> 2/8
    assert m["multi_acc"] == pytest.approx(2 / 8)
    # |err| = 0 1 1 1 1 1 4 0 -> 9/8 ; err^2 = 0 1 1 1 1 1 16 0 -> sqrt(21/8)
    assert m["mae"] == pytest.approx(9 / 8)
    assert m["rmse"] == pytest.approx(math.sqrt(21 / 8))
    # binary AUC, score = predicted rating. positives (#1 #2 #3 #7) = 5 5 3 1,
    # negatives (#4 #5 #6 #8) = 1 2 4 2.  Wins over the 4 negatives:
    #   5 -> 4, 5 -> 4, 3 -> 3 (beats 1 2 2), 1 -> 0.5 (ties the 1) ; 11.5 / 16
    assert m["binary_auc"] == pytest.approx(11.5 / 16)
    # 5-class AUC, score = one-hot of predicted rating (column c = [pred == c]).
    #   class 1: pos #5 (score 0); negs have score 1 at #4 #7, 0 at 5 others -> 2.5/7
    #   class 2: pos #4 (0), #8 (1); negs: one 1 (#5), five 0 -> (2.5 + 5.5)/12 = 8/12
    #   class 3: pos #6 (0); negs: one 1 (#3), six 0 -> 3/7
    #   class 4: pos #2 (0), #3 (0); negs: one 1 (#6), five 0 -> (2.5 + 2.5)/12 = 5/12
    #   class 5: pos #1 (1), #7 (0); negs: one 1 (#2), five 0 -> (5.5 + 2.5)/12 = 8/12
    #   macro = (2.5/7 + 8/12 + 3/7 + 5/12 + 8/12) / 5 = (71/28) / 5 = 71/140
    assert m["multi_auc"] == pytest.approx(71 / 140)


def test_hand_computed_probs_scored():
    r = rating_metrics(_preds(PROBS), n_resamples=200)
    m = {k: v["value"] for k, v in r["metrics"].items()}
    assert r["config"]["auc_scores"] == "probs"
    # threshold / error metrics use the ratings, identical to the rating-scored case
    assert m["binary_acc"] == pytest.approx(5 / 8)
    assert m["binary_f1"] == pytest.approx(4 / 7)
    assert m["mae"] == pytest.approx(9 / 8)
    # binary AUC, s = P4+P5. positives #1 #2 #3 #7 = 0.9 0.8 0.4 0.0 (the unparsed #7
    # is one-hot on 1 whatever its own probs said); negatives #4 #5 #6 #8 = 0.0 0.1 0.3 0.1
    #   0.9 -> 4, 0.8 -> 4, 0.4 -> 4, 0.0 -> 0.5 (ties #4) ; 12.5 / 16
    assert m["binary_auc"] == pytest.approx(12.5 / 16)
    # differs from the rating-scored 11.5/16
    # 5-class AUC, one-vs-rest on probability columns:
    #   class 1: pos #5 0.2; negs 0 0 0 .6 .1 1 .1 -> beats 5 -> 5/7
    #   class 2: pos #4 .3, #8 .6; negs 0 0 .1 .5 .2 0 -> 5 + 6 = 11/12
    #   class 3: pos #6 .4; negs .1 .2 .5 .1 .2 0 .2 -> 6/7
    #   class 4: pos #2 .3, #3 .3; negs .2 0 .1 .2 0 .1 -> 12/12
    #   class 5: pos #1 .7, #7 0; negs .5 .1 0 0 .1 0 -> 6 + 1.5 (3 ties) = 7.5/12
    #   macro = (5/7 + 11/12 + 6/7 + 1 + 7.5/12) / 5 = (345.5/84) / 5 = 691/840
    assert m["multi_auc"] == pytest.approx(691 / 840)


def test_unparsed_counts_wrong_with_max_error():
    # truth <= 3 -> 5, truth > 3 -> 1
    preds = [Prediction(f"u{t}", t, None) for t in (1, 2, 3, 4, 5)]
    y_true, y_pred, probs, n_unparsed = substitute(preds)
    assert y_pred.tolist() == [5, 5, 5, 1, 1]
    assert probs is None and n_unparsed == 5
    r = rating_metrics(preds, n_resamples=50)
    m = {k: v["value"] for k, v in r["metrics"].items()}
    assert m["binary_acc"] == 0.0 and m["multi_acc"] == 0.0 and m["binary_f1"] == 0.0
    # |err| = 4 3 2 3 4 -> 16/5 ; squares 16 9 4 9 16 -> sqrt(54/5)
    assert m["mae"] == pytest.approx(16 / 5)
    assert m["rmse"] == pytest.approx(math.sqrt(54 / 5))
    assert r["unparsed_share"] == 1.0
    # each substitute has the largest error possible for its truth
    for t, p in zip(y_true, y_pred):
        assert abs(t - p) == max(abs(t - r_) for r_ in range(1, 6))


def test_unparsed_probs_replaced_by_one_hot_on_worst():
    preds = [
        Prediction("a", 5, None, (0.0, 0.0, 0.0, 0.0, 1.0)),
        Prediction("b", 2, 2, (0.1, 0.6, 0.2, 0.1, 0.0)),
    ]
    _, y_pred, probs, _ = substitute(preds)
    assert y_pred.tolist() == [1, 2]
    assert probs[0].tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]


def test_mixed_probs_use_one_hot_for_missing():
    # truth 5 2 4 1, pred 5 4 2 1; #2 and #4 lack probs -> one-hot on 4 and on 1.
    preds = [
        Prediction("a", 5, 5, (0.0, 0.0, 0.0, 0.4, 0.6)),  # s = 1.0
        Prediction("b", 2, 4, None),  # one-hot on 4 -> s = 1.0
        Prediction("c", 4, 2, (0.1, 0.2, 0.3, 0.2, 0.2)),  # s = 0.4
        Prediction("d", 1, 1, None),  # one-hot on 1 -> s = 0.0
    ]
    m = point_metrics(*substitute(preds)[:3])
    # positives a (1.0), c (0.4); negatives b (1.0), d (0.0)
    #   a: ties b 0.5 + beats d 1 = 1.5 ; c: beats d = 1 ; 2.5 / 4
    assert m["binary_auc"] == pytest.approx(2.5 / 4)
    # with no probs at all the score is the rating: 5 4 2 1 -> 5 beats 4,1 (2); 2 beats 1 (1) -> 3/4
    no_probs = [Prediction(p.example_id, p.rating_true, p.rating_pred) for p in preds]
    assert point_metrics(*substitute(no_probs)[:3])["binary_auc"] == pytest.approx(3 / 4)


def test_probs_renormalised():
    p = [Prediction("a", 5, 5, (0.0, 0.0, 0.0, 1.0, 1.0)), Prediction("b", 1, 1, (2.0, 0.0, 0.0, 0.0, 0.0))]
    _, _, probs, _ = substitute(p)
    assert probs.tolist() == [[0, 0, 0, 0.5, 0.5], [1, 0, 0, 0, 0]]


def test_undefined_auc_is_nan():
    # every truth > 3: binary AUC undefined; two 5-class labels present -> defined
    preds = [Prediction("a", 4, 5), Prediction("b", 5, 4), Prediction("c", 5, 5)]
    r = rating_metrics(preds, n_resamples=100)
    b = r["metrics"]["binary_auc"]
    assert math.isnan(b["value"]) and math.isnan(b["ci_low"]) and math.isnan(b["ci_high"])
    # 5-class: labels 4 {a}, 5 {b, c}; one-hot(pred) columns.
    #   class 4: pos a (col4 = 0); negs b (1), c (0) -> 0.5/2
    #   class 5: pos b (0), c (1); neg a (1) -> (0 + 0.5)/2
    #   macro over the present labels = (0.25 + 0.25) / 2 = 0.25
    assert r["metrics"]["multi_auc"]["value"] == pytest.approx(0.25)
    # a single class: both AUCs nan, the rest still computed
    one = rating_metrics([Prediction("a", 5, 5), Prediction("b", 5, 4)], n_resamples=50)
    assert math.isnan(one["metrics"]["multi_auc"]["value"])
    assert math.isnan(one["metrics"]["binary_auc"]["value"])
    assert one["metrics"]["multi_acc"]["value"] == 0.5


def test_multi_auc_present_labels_only():
    # labels 1 and 5 only; probs columns: class 1 uses P(1), class 5 uses P(5)
    preds = [
        Prediction("a", 1, 1, (0.7, 0.1, 0.1, 0.1, 0.0)),
        Prediction("b", 1, 2, (0.2, 0.5, 0.1, 0.0, 0.2)),
        Prediction("c", 5, 5, (0.1, 0.0, 0.0, 0.1, 0.8)),
        Prediction("d", 5, 4, (0.3, 0.0, 0.0, 0.6, 0.1)),
    ]
    m = point_metrics(*substitute(preds)[:3])
    # class 1: pos a .7, b .2; negs c .1, d .3 -> a: 2, b: 1 -> 3/4
    # class 5: pos c .8, d .1; negs a .0, b .2 -> c: 2, d: 1 -> 3/4
    assert m["multi_auc"] == pytest.approx(0.75)


def test_ci_contains_point_and_is_deterministic():
    rng = np.random.default_rng(42)
    preds = []
    for i in range(300):
        t = int(rng.integers(1, 6))
        p = int(np.clip(t + rng.integers(-1, 2), 1, 5)) if rng.random() > 0.1 else None
        preds.append(Prediction(f"x{i}", t, p, tuple(rng.dirichlet(np.ones(5) + np.eye(5)[t - 1] * 3))))
    a = rating_metrics(preds, n_resamples=300, seed=7)
    b = rating_metrics(preds, n_resamples=300, seed=7)
    c = rating_metrics(preds, n_resamples=300, seed=8)
    assert a == b
    assert a["metrics"] != c["metrics"]
    assert set(a["metrics"]) == set(METRIC_NAMES)
    for name, v in a["metrics"].items():
        assert v["ci_low"] <= v["value"] <= v["ci_high"], name
        assert v["ci_low"] < v["ci_high"], name
    assert a["metrics"]["mae"]["higher_is_better"] is False
    assert a["metrics"]["rmse"]["higher_is_better"] is False
    assert all(a["metrics"][k]["higher_is_better"] for k in METRIC_NAMES[:5])
    # a narrower interval nests inside the wider one
    n80 = rating_metrics(preds, n_resamples=300, seed=7, ci=0.8)
    for name in METRIC_NAMES:
        assert a["metrics"][name]["ci_low"] <= n80["metrics"][name]["ci_low"]
        assert n80["metrics"][name]["ci_high"] <= a["metrics"][name]["ci_high"]


@pytest.mark.parametrize("with_probs", [True, False])
def test_bulk_bootstrap_matches_sklearn_per_resample(with_probs):
    rng = np.random.default_rng(3)
    n = 40
    preds = [
        Prediction(
            f"x{i}",
            int(rng.integers(1, 6)),
            int(rng.integers(1, 6)) if rng.random() > 0.1 else None,
            tuple(np.round(rng.dirichlet(np.ones(5)), 1)) if with_probs and rng.random() > 0.2 else None,
        )
        for i in range(n)
    ]
    # tiny resamples too (n=3) so that one-class / missing-label resamples occur
    full = substitute(preds)[:3]
    # 3 examples, truths 1 5 5: many resamples hold one class (nan AUCs)
    tiny = (np.array([1, 5, 5]), np.array([2, 5, 4]), None if full[2] is None else full[2][:3])
    n_nan = 0
    for y_true, y_pred, probs in (full, tiny):
        for idx in _resample_indices(len(y_true), 60, seed=1):
            bulk = _bootstrap_stats(y_true, y_pred, probs, idx)
            n_nan += int(np.isnan(bulk["multi_auc"]).sum())
            for r, row in enumerate(idx):
                ref = point_metrics(y_true[row], y_pred[row], None if probs is None else probs[row])
                for name in METRIC_NAMES:
                    np.testing.assert_allclose(bulk[name][r], ref[name], rtol=1e-12, atol=1e-12, err_msg=name)
    assert n_nan > 0


def test_single_resample_and_zero_resamples():
    r1 = rating_metrics(_preds(), n_resamples=1)
    for v in r1["metrics"].values():
        assert v["ci_low"] == v["ci_high"] or math.isnan(v["ci_low"])
    r0 = rating_metrics(_preds(), n_resamples=0)
    assert all(math.isnan(v["ci_low"]) for v in r0["metrics"].values())
    assert r0["metrics"]["mae"]["value"] == pytest.approx(9 / 8)


def test_metric_value_to_dict():
    mv = MetricValue("mae", 1.0, 0.5, 1.5, False)
    assert mv.to_dict() == {"name": "mae", "value": 1.0, "ci_low": 0.5, "ci_high": 1.5, "higher_is_better": False}


def test_config():
    cfg = rating_metrics(_preds(), n_resamples=10, seed=3)["config"]
    assert cfg["n_resamples"] == 10 and cfg["seed"] == 3 and cfg["ci"] == 0.95
    assert cfg["positive_threshold"] == 3 and cfg["unparsed_rule"] == "worst-case"
    assert {"sklearn_version", "numpy_version", "scipy_version"} <= set(cfg)


def test_errors():
    with pytest.raises(ValueError, match="empty"):
        rating_metrics([])
    with pytest.raises(ValueError, match="1..5"):
        rating_metrics([Prediction("a", 6, 5)])
    with pytest.raises(ValueError, match="1..5"):
        rating_metrics([Prediction("a", 0, 5)])
    with pytest.raises(ValueError, match="rating_pred"):
        rating_metrics([Prediction("a", 3, 7)])
    with pytest.raises(ValueError, match="probs"):
        rating_metrics([Prediction("a", 3, 3, (0.5, 0.5))])
    with pytest.raises(ValueError, match="ci"):
        rating_metrics(_preds(), ci=1.5)
    with pytest.raises(ValueError, match="empty"):
        point_metrics([], [], None)
    with pytest.raises(ValueError, match="1..5"):
        point_metrics([1, 2], [3, 9], None)
