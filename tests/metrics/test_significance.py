"""Paired significance: McNemar against a hand-computed binomial, the paired bootstrap against a direct loop."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recsaver.data.records import Prediction
from recsaver.metrics.significance import compare, marker, mcnemar, pair_predictions, paired_bootstrap


def test_mcnemar_exact_is_the_binomial_of_the_discordant_pairs() -> None:
    # 6 pairs where only A is right, 1 where only B is right, 5 where both are right, 3 where both are wrong.
    a = [True] * 6 + [False] * 1 + [True] * 5 + [False] * 3
    b = [False] * 6 + [True] * 1 + [True] * 5 + [False] * 3
    result = mcnemar(a, b)
    assert (result["n01"], result["n10"]) == (6, 1)
    # Two-sided exact: 2 * P(X <= 1), X ~ Binomial(7, 1/2) = 2 * (1 + 7) / 2**7.
    assert result["p_value"] == pytest.approx(2 * (1 + 7) / 128)
    # Chi-square with continuity: (|6 - 1| - 1)^2 / 7; sf of chi2(1) is erfc(sqrt(x / 2)).
    assert result["statistic_chi2"] == pytest.approx(16 / 7)
    assert result["p_value_chi2"] == pytest.approx(math.erfc(math.sqrt(16 / 7 / 2)))


def test_mcnemar_without_discordant_pairs_is_one_and_symmetric_otherwise() -> None:
    assert mcnemar([True, False], [True, False])["p_value"] == 1.0
    a, b = [True, True, True, False], [False, False, False, True]
    assert mcnemar(a, b)["p_value"] == mcnemar(b, a)["p_value"] == pytest.approx(2 * (1 + 4) / 16)


def _preds(truth: list[int], pred: list[int | None], prefix: str = "e") -> list[Prediction]:
    return [Prediction(f"{prefix}{k}", t, p) for k, (t, p) in enumerate(zip(truth, pred))]


def test_compare_counts_binary_and_five_class_discordance_by_hand() -> None:
    truth = [5, 5, 4, 2, 1, 3]
    ref = _preds(truth, [4, 5, 1, 2, 5, 3])     # binary right: T,T,F,T,F,T  5-class right: F,T,F,T,F,T
    # None is scored as the worst rating (5 for a gold 1): wrong on both tasks.
    other = _preds(truth, [5, 2, 5, 2, None, 4])  # binary right: T,F,T,T,F,F  5-class right: T,F,F,T,F,F
    result = compare(ref, other, n_resamples=50)
    assert (result["mcnemar"]["binary_acc"]["n01"], result["mcnemar"]["binary_acc"]["n10"]) == (2, 1)
    assert (result["mcnemar"]["multi_acc"]["n01"], result["mcnemar"]["multi_acc"]["n10"]) == (2, 1)
    assert result["p_values"]["binary_acc"] == result["p_values"]["multi_acc"] == 1.0  # 2 * P(X <= 1 | 3) = 1
    assert result["n"] == 6


def test_pairing_is_by_example_id_not_position() -> None:
    a = _preds([5, 1, 3], [5, 2, 3])
    b = list(reversed(_preds([5, 1, 3], [4, 1, 3])))
    left, right = pair_predictions(a, b)
    assert [p.example_id for p in left] == [p.example_id for p in right] == ["e0", "e1", "e2"]
    with pytest.raises(ValueError, match="gold rating"):
        pair_predictions(a, _preds([4, 1, 3], [4, 1, 3]))
    with pytest.raises(ValueError, match="share no example_id"):
        pair_predictions(a, _preds([5], [5], prefix="other"))


def test_paired_bootstrap_matches_a_direct_loop_over_the_same_resamples() -> None:
    rng = np.random.default_rng(7)
    truth = rng.integers(1, 6, 40).tolist()
    a = _preds(truth, rng.integers(1, 6, 40).tolist())
    b = _preds(truth, [t if k % 3 else 3 for k, t in enumerate(truth)])
    result = paired_bootstrap(a, b, n_resamples=300, seed=3)
    idx = np.random.default_rng(3).integers(0, 40, size=(300, 40))
    ya, pa, pb = np.array(truth), np.array([p.rating_pred for p in a]), np.array([p.rating_pred for p in b])
    by_hand = {"multi_acc": lambda t, p: np.mean(t == p), "mae": lambda t, p: np.mean(np.abs(t - p))}
    for metric, fn in by_hand.items():
        deltas = np.array([fn(ya[i], pb[i]) - fn(ya[i], pa[i]) for i in idx])
        observed = fn(ya, pb) - fn(ya, pa)
        assert result[metric]["delta"] == pytest.approx(observed)
        assert result[metric]["p_value"] == pytest.approx(np.mean(np.abs(deltas - observed) >= abs(observed) - 1e-12))
        assert result[metric]["ci_low"] == pytest.approx(np.percentile(deltas, 2.5))


def test_identical_methods_are_not_significant_and_a_perfect_one_is() -> None:
    truth = [1, 2, 3, 4, 5] * 6
    same = paired_bootstrap(_preds(truth, truth), _preds(truth, truth), n_resamples=100)
    assert all(v["p_value"] == 1.0 for v in same.values() if not math.isnan(v["p_value"]))
    off_by_two = _preds(truth, [t + 2 if t <= 3 else t - 2 for t in truth])
    better = paired_bootstrap(off_by_two, _preds(truth, truth), n_resamples=100)
    assert better["mae"]["delta"] == -2.0 and better["mae"]["p_value"] == 0.0 and better["mae"]["b_better"]
    tiny = paired_bootstrap(off_by_two[:3], _preds(truth[:3], truth[:3]), n_resamples=100)
    assert math.isnan(tiny["mae"]["p_value"]) and tiny["mae"]["delta"] == -2.0  # too few pairs for a p-value
    assert marker(0.0) == "**" and marker(0.03) == "*" and marker(0.2) == "" and marker(float("nan")) == ""
