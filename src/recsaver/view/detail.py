"""One example across the runs: what the example page and `/api/example/ID` show.

The prompt is not stored in a run (it would double every run folder); it is rebuilt here with the
same `PromptBuilder` the run used, from the run's data folder and config (method, ablation, the
one-shot example, the history items dropped to fit the context), so the page shows what the
model read. When the data folder has moved or been deleted, the page says so instead.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from ..store import RATING_KINDS
from .data import Viewer, ViewRun, data_folder, prediction_status

RATING_LABELS = ("1", "2", "3", "4", "5")


def strike_segments(text: str, removed: list[str]) -> list[tuple[str, bool]]:
    """`text` cut into (piece, removed?) so the scrubbed sentences can be shown struck through in place.

    A removed sentence that is not found verbatim (it should be) is appended at the end, struck,
    so nothing the scrubber took out is hidden."""
    spans: list[tuple[int, int]] = []
    missing: list[str] = []
    for sentence in (s.strip() for s in removed):
        if not sentence:
            continue
        at = text.find(sentence)
        while at >= 0 and any(a < at + len(sentence) and at < b for a, b in spans):
            at = text.find(sentence, at + 1)
        if at < 0:
            missing.append(sentence)
        else:
            spans.append((at, at + len(sentence)))
    pieces: list[tuple[str, bool]] = []
    pos = 0
    for a, b in sorted(spans):
        pieces += [(text[pos:a], False), (text[a:b], True)]
        pos = b
    pieces.append((text[pos:], False))
    pieces += [(" " + s, True) for s in missing]
    return [(t, struck) for t, struck in pieces if t]


def prob_bars(probs: list[float] | tuple[float, ...] | None, marks: dict[int, str] | None = None
              ) -> list[dict[str, Any]] | None:
    """P(1..5) as five bars: rating, probability, width in percent of the largest, and marks (gold, pred)."""
    if not probs or len(probs) != 5:
        return None
    peak = max(probs) or 1.0
    marks = marks or {}
    return [{"rating": k + 1, "p": float(p), "width": round(100 * float(p) / peak, 1),
             "mark": marks.get(k + 1, "")} for k, p in enumerate(probs)]


def rebuild_prompt(viewer: Viewer, view: ViewRun, example_id: str) -> dict[str, Any]:
    """{"text": the rating prompt the run sent, or None, "note": why not, or what was changed to fit}."""
    from ..prompts import OneShot, PromptBuilder, PromptOptions, choose_one_shot
    from ..prompts.builder import as_ablation, as_method

    cfg = view.config
    data, recorded = data_folder(view.folder, view.run)
    if recorded is None:
        return {"text": None, "note": "run.json records no data folder, so the prompt cannot be rebuilt."}
    if data is None:
        return {"text": None, "note": f"The data folder {recorded} is gone (or moved), so the prompt cannot be "
                                      "rebuilt; the run's outputs are shown as stored."}
    split = str(cfg.get("split") or "test")
    try:
        examples = viewer.examples(data, split)
        example = examples.get(example_id)
        if example is None:
            return {"text": None, "note": f"Example {example_id} is not in {data / (split + '.jsonl')} (the data "
                                          "folder changed since the run), so the prompt cannot be rebuilt."}
        options = PromptOptions(method=as_method(cfg.get("method", "cot")),
                                ablation=as_ablation(cfg.get("ablation", "none")))
        one_shot = None
        if options.ablation == "one-shot":
            from ..steps.predict import default_one_shot_reasoning

            users = {examples[k].user_id for k in view.records if k in examples}
            train = list(viewer.examples(data, "train").values())
            shot = choose_one_shot(train, exclude_users=users, seed=int(cfg.get("seed") or 0))
            one_shot = OneShot(shot, cfg.get("one_shot_reasoning") or default_one_shot_reasoning(shot))
        dropped = int(((view.run or {}).get("history_items_dropped_to_fit") or {}).get(example_id, 0))
        if dropped:
            example = replace(example, history=example.history[dropped:])
        text = PromptBuilder(example.domain, options, one_shot=one_shot).rating_prompt(example)
    except (ValueError, OSError) as e:
        return {"text": None, "note": f"The prompt cannot be rebuilt: {e}"}
    note = (f"The {dropped} oldest history item(s) are left out, as the run did to fit the model's context."
            if dropped else "")
    return {"text": text, "note": note}


def _rating_panel(viewer: Viewer, view: ViewRun, example_id: str) -> dict[str, Any]:
    r = view.records[example_id]
    gold, pred = r.get("rating_true"), r.get("rating_pred")
    marks = {gold: "gold"} if gold else {}
    if pred:
        marks[pred] = "gold pred" if pred == gold else "pred"
    return {"gold": gold, "pred": pred, "status": prediction_status(r), "rating_source": r.get("rating_source"),
            "error": r.get("error"), "reasoning": r.get("reasoning"), "raw": r.get("raw"),
            "thinking": r.get("thinking"), "correct": None if r.get("status") == "failed" else pred == gold,
            "probs": r.get("probs"), "bars": prob_bars(r.get("probs"), marks),
            "prompt": rebuild_prompt(viewer, view, example_id) if view.kind == "predict" else None}


def _candidate(c: dict[str, Any], gold: int | None) -> dict[str, Any]:
    target = c.get("target", gold)
    return {**c, "target": target, "negative": bool(c.get("negative")),
            "segments": strike_segments(str(c.get("text") or ""), list(c.get("removed_sentences") or [])),
            "verify_bars": prob_bars(c.get("verify_probs"), {int(target): "gold"} if target else None),
            "judge_bars": prob_bars(c.get("judge_probs"), {int(target): "gold"} if target else None)}


def _references_panel(view: ViewRun, example_id: str) -> dict[str, Any]:
    r = view.records[example_id]
    gold = r.get("rating")
    return {"gold": gold, "pool": list(r.get("references") or []), "failed_calls": r.get("failed_calls", 0),
            "candidates": [_candidate(c, gold) for c in r.get("candidates") or []],
            "content_free_probs": r.get("content_free_probs")}


def example_detail(viewer: Viewer, example_id: str, runs: list[int] | None = None) -> dict[str, Any]:
    """Everything about one example_id, one panel per run that has it (those in `runs` when given)."""
    having = viewer.runs_with(example_id)
    if not having:
        raise KeyError(example_id)
    chosen = [v for v in having if runs is None or v.index in runs] or having
    panels = []
    for view in chosen:
        panel: dict[str, Any] = {"run": view.index, "label": view.label, "title": view.title, "kind": view.kind,
                                 "domain": view.domain, "metrics": view.scores.get(example_id, {})}
        if view.kind in RATING_KINDS:
            panel.update(_rating_panel(viewer, view, example_id))
        elif view.kind == "references":
            panel.update(_references_panel(view, example_id))
        else:  # a score folder; one of `score --outputs` also holds the text it scored (and rating, thinking)
            r = view.records[example_id]
            panel.update(correct=r.get("correct"), text=r.get("text"), pred=r.get("rating"),
                         thinking=r.get("thinking"))
        panels.append(panel)
    gold = next((p["gold"] for p in panels if p.get("gold") is not None), None)
    return {"example_id": example_id, "gold": gold, "domain": chosen[0].domain, "panels": panels,
            "item": _target_item(viewer, chosen, example_id),
            "available": [{"run": v.index, "label": v.label, "title": v.title, "kind": v.kind,
                           "shown": v in chosen} for v in having]}


def _target_item(viewer: Viewer, runs: list[ViewRun], example_id: str) -> dict[str, Any] | None:
    """The new item's title and the history length, from the first run whose data folder is still there."""
    for view in runs:
        data, _ = data_folder(view.folder, view.run)
        if data is None:
            continue
        try:
            example = viewer.examples(Path(data), str(view.config.get("split") or "test")).get(example_id)
        except (ValueError, OSError):
            continue
        if example is not None:
            return {"title": example.target.item.title, "history": len(example.history), "user": example.user_id}
    return None
