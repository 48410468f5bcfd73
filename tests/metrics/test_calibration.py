"""Calibration curves and ECE against values worked out by hand."""

from __future__ import annotations

import pytest

from recsaver.data.records import Prediction
from recsaver.metrics.calibration import calibration, reliability


def test_reliability_bins_and_ece_by_hand() -> None:
    # Bin 6 holds 0.62 and 0.68: accuracy 1/2, confidence 0.65 -> ECE = |0.5 - 0.65| * 2/3 ...
    # bin 9 holds 0.95 (correct): |1 - 0.95| * 1/3.
    result = reliability([0.62, 0.68, 0.95], [True, False, True], n_bins=10)
    b6, b9 = result["bins"][6], result["bins"][9]
    assert (b6["count"], b6["accuracy"], b6["confidence"]) == (2, 0.5, pytest.approx(0.65))
    assert (b9["count"], b9["accuracy"]) == (1, 1.0)
    assert result["ece"] == pytest.approx(2 / 3 * 0.15 + 1 / 3 * 0.05)
    assert sum(b["count"] for b in result["bins"]) == 3
    assert reliability([1.0], [True], n_bins=5)["bins"][4]["count"] == 1  # 1.0 lands in the last bin


def test_binary_and_top_label_calibration_by_hand() -> None:
    preds = [
        Prediction("a", 5, 5, probs=(0.0, 0.0, 0.0, 0.25, 0.75)),      # P(>3) = 1.00, top 0.75 right
        Prediction("b", 2, 4, probs=(0.05, 0.15, 0.15, 0.35, 0.30)),   # P(>3) = 0.65, top 0.35 wrong
        Prediction("c", 1, 1, probs=(0.55, 0.20, 0.10, 0.10, 0.05)),   # P(>3) = 0.15, top 0.55 right
        Prediction("d", 3, 3),                                          # no probabilities: skipped
    ]
    cal = calibration(preds)
    assert cal["n_with_probs"] == 3 and cal["n_without_probs"] == 1
    # Binary outcomes (gold > 3): 1, 0, 0 -> (|1 - 1| + |0 - 0.65| + |0 - 0.15|) / 3.
    assert cal["binary"]["ece"] == pytest.approx(0.8 / 3)
    # Top label: (|1 - 0.75| + |0 - 0.35| + |1 - 0.55|) / 3.
    assert cal["top_label"]["ece"] == pytest.approx(1.05 / 3)
    assert [b["count"] for b in cal["binary"]["bins"]] == [0, 1, 0, 0, 0, 0, 1, 0, 0, 1]


def test_unnormalised_probabilities_are_rescaled_and_bad_ones_rejected() -> None:
    cal = calibration([Prediction("a", 5, 5, probs=(0.0, 0.0, 0.0, 0.5, 1.5))])
    assert cal["top_label"]["bins"][7]["confidence"] == pytest.approx(0.75)
    with pytest.raises(ValueError, match="positive sum"):
        calibration([Prediction("a", 5, 5, probs=(0.0, 0.0, 0.0, 0.0, 0.0))])
    with pytest.raises(ValueError, match="\\[0, 1\\]"):
        reliability([1.5], [True])
