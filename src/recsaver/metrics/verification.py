"""Rec-SAVER verification modes: which explanations join the pool, from what the verifier said.

A candidate explanation carries everything its verifier said about it: the rating it generated
(`verify_rating`, the paper's Algorithm 1), its P(1..5 | explanation) (`verify_probs`), and, once per
example, P(1..5 | a content-free explanation) (`content_free_probs`). Every mode is a pure function of
those stored values, so a pool is rebuilt under another mode or threshold without calling a model
(`recsaver references rebuild`).

Modes (the paper's three first; `exact` is the default):
- `none`: every scrubbed explanation joins.
- `exact` / `1-off`: the generated rating equals the gold one / is within one of it.
- `prob:TAU`: P(gold | explanation) >= TAU.
- `calibrated` / `calibrated-1-off`: contextual calibration (Zhao et al. 2021, "Calibrate Before Use"):
  q_r = P(r | explanation) / P(r | content-free), renormalized; argmax q equals the gold rating / is
  within one of it. This divides out the verifier's prior (toward 4-5 for Qwen, toward 1 for SmolLM2).
- `calibrated:TAU` / `calibrated-1-off:TAU`: the calibrated q instead of its argmax: q_gold >= TAU / the mass of
  q on the ratings within one of gold >= TAU. `calibrated-1-off:0.5` asks that the calibrated verifier find a
  rating within one of gold more likely than not; plain `calibrated-1-off` accepts when the single most likely
  rating is within one, however flat q is (q = .34/.01/.01/.31/.33 passes for a gold 2 with 35% on 1-3).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..config.verify import KINDS, MODE_HELP, VerifyMode, parse_mode

__all__ = ["KINDS", "MODE_HELP", "VerifyMode", "accepts", "answer", "argmax_rating", "calibrate", "parse_mode"]
_EPS = 1e-12  # a content-free probability of exactly 0 would divide by zero; it means "never", so tiny

def argmax_rating(probs: Sequence[float]) -> int:
    """The rating (1..5) with the most probability; a tie goes to the lower rating."""
    best = max(range(len(probs)), key=lambda i: (probs[i], -i))
    return best + 1


def calibrate(probs: Sequence[float], content_free: Sequence[float]) -> tuple[float, ...]:
    """Zhao et al.'s diagonal calibration W = diag(p_cf)^-1, b = 0, renormalized to sum to 1."""
    if len(probs) != len(content_free):
        raise ValueError(f"calibrate: {len(probs)} probabilities but {len(content_free)} content-free ones")
    raw = [p / max(c, _EPS) for p, c in zip(probs, content_free)]
    total = sum(raw)
    if total <= 0:
        raise ValueError("calibrate: every probability is 0")
    return tuple(r / total for r in raw)


def answer(mode: VerifyMode, rating: int | None, probs: Sequence[float] | None,
           content_free: Sequence[float] | None) -> int | None:
    """The rating a mode reads from the verifier (calibrated argmax, or the generated rating); None if absent."""
    if mode.needs_content_free:
        if probs is None or content_free is None:
            return None
        return argmax_rating(calibrate(probs, content_free))
    return rating


def accepts(mode: VerifyMode, gold: int, rating: int | None, probs: Sequence[float] | None = None,
            content_free: Sequence[float] | None = None) -> bool | None:
    """Whether the explanation joins the pool for `gold`; None when the mode's input is missing (no verdict)."""
    if mode.kind == "none":
        return True
    tolerance = 1 if mode.kind.endswith("1-off") else 0
    if mode.tau is not None:  # prob:TAU, calibrated[-1-off]:TAU: the mass on ratings within tolerance of gold
        if probs is None or (mode.needs_content_free and content_free is None):
            return None
        q = calibrate(probs, content_free) if mode.needs_content_free and content_free is not None else probs
        return sum(x for r, x in enumerate(q, start=1) if abs(r - gold) <= tolerance) >= mode.tau
    said = answer(mode, rating, probs, content_free)
    if said is None:
        return None if mode.needs_probs else False  # the paper: an unparsed verification rejects
    return abs(said - gold) <= tolerance
