"""Verify modes (metrics/verification.py) and the audit (metrics/verification_audit.py) on hand-computed values."""

from __future__ import annotations

import pytest

from recsaver.metrics.verification import accepts, argmax_rating, calibrate, parse_mode
from recsaver.metrics.verification_audit import audit, faithfulness, mode_summary, rebuild_row

# A verifier with a prior toward 5: P(1..5 | explanation) and P(1..5 | content-free "N/A").
P = (0.10, 0.05, 0.05, 0.30, 0.50)
CF = (0.02, 0.03, 0.05, 0.30, 0.60)


def test_parse_mode_forms_and_errors() -> None:
    assert str(parse_mode("exact")) == "exact" and str(parse_mode(" prob:0.40 ")) == "prob:0.4"
    assert parse_mode("calibrated").needs_content_free and parse_mode("prob:1").needs_probs
    assert not parse_mode("1-off").needs_probs
    assert str(parse_mode("calibrated-1-off:0.50")) == "calibrated-1-off:0.5"
    assert str(parse_mode("calibrated")) == "calibrated"
    assert parse_mode("calibrated:0.4").needs_content_free and parse_mode("calibrated:0.4").tau == 0.4
    for bad in ("prob", "prob:0", "prob:1.5", "prob:x", "exactly", "calibrated-2-off", "calibrated-1-off:0",
                "calibrated:x", "exact:0.5"):
        with pytest.raises(ValueError, match="verify mode|TAU"):
            parse_mode(bad)


def test_calibration_by_hand() -> None:
    # q = p / cf = (5, 1.6667, 1, 1, 0.8333); sum 9.5 -> (0.5263, 0.1754, 0.1053, 0.1053, 0.0877)
    q = calibrate(P, CF)
    assert q == pytest.approx((5 / 9.5, (0.05 / 0.03) / 9.5, 1 / 9.5, 1 / 9.5, (0.5 / 0.6) / 9.5))
    assert sum(q) == pytest.approx(1.0) and argmax_rating(q) == 1
    assert argmax_rating(P) == 5 and argmax_rating((0.3, 0.3, 0.2, 0.1, 0.1)) == 1  # a tie goes lower
    assert calibrate((0.5, 0.5, 0, 0, 0), (0.0, 1.0, 0, 0, 0))[0] == pytest.approx(1.0)  # cf 0: no division error


def test_each_mode_by_hand() -> None:
    m = parse_mode
    assert accepts(m("exact"), 5, 5) and not accepts(m("exact"), 4, 5) and accepts(m("exact"), 4, None) is False
    assert accepts(m("1-off"), 4, 5) and not accepts(m("1-off"), 3, 5)
    assert accepts(m("none"), 1, None)
    assert accepts(m("prob:0.3"), 4, 5, P) and not accepts(m("prob:0.31"), 4, 5, P)
    assert accepts(m("prob:0.5"), 5, 5, P) and accepts(m("prob:0.5"), 5, 5, None) is None  # no probs: no verdict
    # calibrated: the argmax moves from 5 (raw) to 1; 1-off accepts 2 as well.
    assert accepts(m("calibrated"), 1, 5, P, CF) and not accepts(m("calibrated"), 5, 5, P, CF)
    assert accepts(m("calibrated-1-off"), 2, 5, P, CF) and not accepts(m("calibrated-1-off"), 3, 5, P, CF)
    assert accepts(m("calibrated"), 1, 5, P, None) is None
    # with TAU, the calibrated q itself: q_1 = 0.5263; the mass within one of 3 is q_2 + q_3 + q_4 = 0.3860,
    # of 2 is q_1 + q_2 + q_3 = 0.8070
    assert accepts(m("calibrated:0.5"), 1, 5, P, CF) and not accepts(m("calibrated:0.53"), 1, 5, P, CF)
    assert accepts(m("calibrated-1-off:0.38"), 3, 5, P, CF) and not accepts(m("calibrated-1-off:0.39"), 3, 5, P, CF)
    assert accepts(m("calibrated-1-off:0.8"), 2, 5, P, CF) and not accepts(m("calibrated-1-off:0.81"), 2, 5, P, CF)
    assert accepts(m("calibrated-1-off:0.5"), 2, 5, P, None) is None


def _c(target: int, rating: int | None, probs=None, negative=False, text="t", status="ok", judge=None) -> dict:
    return {"target": target, "negative": negative, "text": text, "scrubbed_text": text, "removed_sentences": [],
            "status": status, "verify_rating": rating, "verify_probs": probs, "judge_probs": judge}


ROWS = [
    # gold 1: explanations verified 1 and 5; a negative (explains 3) verified 1 -> false accept under exact
    {"rating": 1, "content_free_probs": list(CF), "candidates": [
        _c(1, 1, P, judge=[0.6, 0.1, 0.1, 0.1, 0.1]), _c(1, 5, (0.0, 0.0, 0.0, 0.1, 0.9)),
        _c(3, 1, P, negative=True, judge=[0.1, 0.1, 0.6, 0.1, 0.1])]},
    # gold 5: one verified 5, one empty after the scrub (a rejection), one failed (no verdict), a negative 3 -> 4
    {"rating": 5, "content_free_probs": list(CF), "candidates": [
        _c(5, 5, (0.0, 0.0, 0.0, 0.2, 0.8), judge=[0.0, 0.0, 0.1, 0.2, 0.7]), _c(5, None, text=""),
        _c(5, None, status="failed"), _c(3, 4, (0.0, 0.1, 0.3, 0.4, 0.2), negative=True)]},
]


def test_mode_summary_by_hand() -> None:
    s = mode_summary(ROWS, parse_mode("exact"))
    assert s["pass_rate_per_label"] == {"1": 0.5, "2": None, "3": None, "4": None, "5": 0.5}
    assert s["candidates_per_label"]["5"] == 2 and s["min_pass_rate"] == 0.5 and s["coverage"] == 1.0
    assert s["negatives"] == 2 and s["false_accept_rate"] == 0.5  # the explanation of a 3 was verified 1 = gold
    assert s["confusion"][0] == [1, 0, 0, 0, 1] and s["confusion"][2] == [1, 0, 0, 1, 0]
    assert s["confusion"][4] == [0, 0, 0, 0, 1]
    one_off = mode_summary(ROWS, parse_mode("1-off"))
    assert one_off["false_accept_rate"] == 1.0 and one_off["false_accept_per_distance"] == {"2": 1.0}  # 4 ~ 5
    cal = mode_summary(ROWS, parse_mode("calibrated"))
    # row 1: P -> calibrated 1 (kept); (0,0,0,.1,.9) / CF -> argmax 5 (not). Negative P -> 1 = gold: false accept.
    # row 2: (0,0,0,.2,.8)/CF = (0,0,0,.667,1.333) -> 5 kept; negative -> (0, 3.33, 6, 1.33, .33) -> 3: rejected.
    assert cal["pass_rate_per_label"]["1"] == 0.5 and cal["pass_rate_per_label"]["5"] == 0.5
    assert cal["false_accept_rate"] == 0.5
    prob = mode_summary(ROWS, parse_mode("prob:0.15"))
    assert prob["pass_rate_per_label"]["1"] == 0.0 and prob["pass_rate_per_label"]["5"] == 0.5  # P(1) = .1 < .15
    assert prob["false_accept_per_distance"] == {"2": 0.5}  # the second negative gives the gold 5 P = .2


def test_rebuild_row_keeps_negatives_out_of_the_pool() -> None:
    row = rebuild_row({"example_id": "e", **ROWS[0]}, parse_mode("none"))
    assert row["verify"] == "none" and [c["kept"] for c in row["candidates"]] == [True, True, True]
    assert len(row["references"]) == 2  # the negative is accepted but never a reference


def test_faithfulness_and_audit() -> None:
    f = faithfulness(ROWS)
    assert f is not None and f["judged"] == 3 and f["agreement"] == 1.0
    assert f["agreement_per_label"] == {"1": 1.0, "2": None, "3": 1.0, "4": None, "5": 1.0}
    assert f["mean_judged_rating_per_label"]["5"] == pytest.approx(0.3 + 0.8 + 3.5)
    a = audit(ROWS)
    assert set(a["modes"]) == {"none", "exact", "1-off", "calibrated", "calibrated-1-off", "prob:0.25", "prob:0.5"}
    old = [{"rating": 4, "candidates": [{"text": "t", "scrubbed_text": "t", "verify_rating": 4, "status": "ok"}]}]
    assert set(audit(old)["modes"]) == {"none", "exact", "1-off"} and audit(old)["faithfulness"] is None
    assert "calibrated" not in f  # no row has the judge's content-free P(1..5)


def test_faithfulness_calibrated_divides_out_the_judges_prior() -> None:
    # The judge reads 3 into an explanation of a 1 (raw argmax 3), but its content-free reading leans to 3-5:
    # 0.34/0.20 = 1.70 < 0.16/0.03 = 5.33, so calibrated it reads 1; the explanation of a 5 stays a 5.
    free = [0.03, 0.04, 0.20, 0.40, 0.33]
    rows = [{"rating": 1, "judge_content_free_probs": free, "candidates": [
        {"target": 1, "status": "ok", "scrubbed_text": "t", "judge_probs": [0.16, 0.13, 0.34, 0.24, 0.13]},
        {"target": 5, "negative": True, "status": "ok", "scrubbed_text": "t",
         "judge_probs": [0.01, 0.01, 0.08, 0.30, 0.60]}]},
        {"rating": 2, "candidates": [  # no content-free reading: in the raw figures only
            {"target": 2, "status": "ok", "scrubbed_text": "t", "judge_probs": [0.1, 0.6, 0.1, 0.1, 0.1]}]}]
    f = faithfulness(rows)
    assert f is not None and f["judged"] == 3
    assert f["agreement_per_label"] == {"1": 0.0, "2": 1.0, "3": None, "4": None, "5": 1.0}
    cal = f["calibrated"]
    assert cal["judged"] == 2 and cal["agreement_per_label"] == {"1": 1.0, "2": None, "3": None, "4": None, "5": 1.0}
    weights = [p / c for p, c in zip([0.16, 0.13, 0.34, 0.24, 0.13], free)]
    assert cal["mean_judged_rating_per_label"]["1"] == pytest.approx(
        sum(w * r for w, r in zip(weights, range(1, 6))) / sum(weights))
