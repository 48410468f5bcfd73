"""`recsaver study create`: sample items balanced by gold rating and store them for raters.

What raters see (paper Section 3.2, "No ratings (ground truth or LLM predicted) are shown
to the human raters"):
- the user's history and the new item exactly as the model's prompt showed them, rendered
  by the run's own `PromptBuilder` (same ablation, same history items dropped to fit the
  context). The history keeps the user's PAST ratings ("User Rating: 4"): they are part of
  what the model reasoned from, and a rater needs them to judge statements such as "the
  user rates most moisturizers 5" (Table 13's "incorrect product statistics");
- the reasoning without its rating header part, and with every sentence that states the
  predicted rating of the new item replaced by a marker (see `redact_prediction`).
The gold and predicted ratings stay in the database (never in a page) for Table 13.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..data.records import Example, Prediction
from ..prompts import DOMAIN_WORDS, PromptBuilder, PromptOptions
from ..prompts.builder import as_ablation
from ..prompts.leakage import Scrubber
from ..steps.score import EmptyPoolsError, empty_pools_advice
from ..store import PREDICTIONS, RUN, DataStore, RunStore, load_references
from .db import DB_NAME, StudyDB

HISTORY_MARK = "### Past User History: ###\n\n"
NEW_ITEM_MARK = "\n\n### New Item Information: ###\n\n"
END_MARK = "\n\n#####\n\n"
REDACTED = "[rating statement removed]"

# A rating sentence is redacted only when it also looks forward to the new item; sentences
# about the history ("she rated both serums 5 stars") stay, raters need them.
_PREDICTION_CUE = re.compile(
    r"\b(?:predict\w*|would|will|likely|expect\w*|probably|new (?:product|item|video|movie)"
    r"|this (?:product|item|video|movie)|recommend\w*|overall|final|i'd|i would|my rating|give it|rate it)\b", re.I)
_RATING_LINE = re.compile(r"^[ \t#*_>]*(?:final[ \t]+|predicted[ \t]+)?rating[ \t#*_]*(?::.*)?$", re.I | re.M)
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")


@dataclass(frozen=True)
class CreateConfig:
    runs: tuple[str, ...]
    references: str | None = None
    per_domain: int = 50
    raters: int = 3
    seed: int = 0
    redact: bool = True


@dataclass
class CreateResult:
    admin_token: str
    items: int
    per_domain: dict[str, dict[int, int]]
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Candidate:
    run_index: int
    prediction: Prediction
    example: Example


def redact_prediction(reasoning: str, scrubber: Scrubber = Scrubber()) -> tuple[str, int]:
    """Cut any rating section, and replace sentences stating the new item's rating; return (text, n)."""
    text = reasoning.replace("\r\n", "\n").strip()
    header = _RATING_LINE.search(text)
    if header:
        text = text[:header.start()].rstrip()
    removed = 0
    lines = []
    for line in text.split("\n"):
        kept: list[str] = []
        for sentence in _SENTENCE_END.split(line):
            if sentence.strip() and scrubber.leaks(sentence) and _PREDICTION_CUE.search(sentence):
                removed += 1
                if not kept or kept[-1] != REDACTED:
                    kept.append(REDACTED)
            elif sentence.strip():
                kept.append(sentence.strip())
        lines.append(" ".join(kept))
    return "\n".join(lines).strip(), removed + int(header is not None)


def split_prompt(prompt: str) -> tuple[str, str]:
    """(history, new item) sections of a rating prompt; the last history block (a one-shot has two)."""
    _, found, rest = prompt.rpartition(HISTORY_MARK)
    history, found2, rest = rest.partition(NEW_ITEM_MARK)
    new_item, found3, _ = rest.partition(END_MARK)
    if not (found and found2 and found3):
        raise ValueError("the prompt template no longer has the history / new item markers the study expects")
    return history.strip(), new_item.strip()


def _read_run(run: Path) -> dict[str, Any]:
    info = RunStore(run).read_run()
    if info is None:
        raise FileNotFoundError(f"{run / RUN}: not a run folder (no {RUN}; run `recsaver predict` first)")
    return info


def _examples(data: Path, split: str) -> dict[str, Example]:
    store = DataStore(data)
    found = store.examples_by_id((split, "test", "train"))
    if not found:
        raise FileNotFoundError(f"{data}: no {store.test_path.name} or {store.train_path.name} (the run's config.data)")
    return found


def load_candidates(runs: Sequence[Path], pools: dict[str, list[str]] | None,
                    warnings: list[str]) -> tuple[list[dict[str, Any]], list[Candidate]]:
    """Every prediction with a reasoning text (and a non-empty reference pool, when given)."""
    infos, out = [], []
    for k, run in enumerate(runs):
        info = _read_run(run)
        cfg = info.get("config") or {}
        if "data" not in cfg:
            raise ValueError(f"{run / RUN}: config.data is missing (which prepared data the run used)")
        examples = _examples(Path(cfg["data"]), cfg.get("split", "test"))
        preds = RunStore(run).read_predictions()
        failed = [p for p in preds if p.failed]
        if failed:
            warnings.append(f"{run}: {len(failed)} predictions whose model calls failed left out (the run is "
                            "incomplete: rerun it to fill them in)")
            preds = [p for p in preds if not p.failed]
            if not preds:
                raise ValueError(f"{run}: every prediction failed (its model calls errored; see {RUN}): "
                                 "rerun it before building a study")
        no_text = [p for p in preds if not (p.reasoning or "").strip()]
        if len(no_text) == len(preds):
            raise ValueError(f"{run}: no prediction has a reasoning text (a direct or baseline run cannot be studied)")
        if no_text:
            warnings.append(f"{run}: {len(no_text)} predictions without reasoning left out")
        missing_pool = 0
        per_label: defaultdict[int, int] = defaultdict(int)
        missing_per_label: defaultdict[int, int] = defaultdict(int)
        for p in preds:
            if not (p.reasoning or "").strip():
                continue
            per_label[p.rating_true] += 1
            if p.example_id not in examples:
                raise ValueError(f"{run / PREDICTIONS}: example_id {p.example_id!r} is not in {cfg['data']}")
            if pools is not None and not pools.get(p.example_id):
                missing_pool += 1
                missing_per_label[p.rating_true] += 1
                continue
            out.append(Candidate(k, p, examples[p.example_id]))
        if missing_pool:
            warnings.append(f"{run}: {missing_pool} predictions without a reference pool left out")
            skewed = [f"{label}: {missing_per_label[label]} of {n}" for label, n in sorted(per_label.items())
                      if missing_per_label[label] * 2 > n]
            if skewed and missing_pool < sum(per_label.values()):
                warnings.append(f"{run}: the items are skewed by gold rating, because most predictions of some "
                                f"labels have no reference pool (without a pool, per label: {', '.join(skewed)}); "
                                "rebuild the pools without a model call (`recsaver references rebuild REFS "
                                "--verify 1-off|calibrated|none --out NEW`) or use a stronger verifier to balance them")
        infos.append({"path": str(run), "info": info})
    return infos, out


def balanced_sample(candidates: list[Candidate], per_domain: int, seed: int,
                    warnings: list[str]) -> dict[str, list[Candidate]]:
    """Per domain, round-robin over gold labels 1..5 (and over runs within a label) until full.

    Round-robin gives each label per_domain/5 when it can and hands a scarce label's
    shortfall to the others, which real Amazon data (mostly 5 stars) needs.
    """
    rng = random.Random(seed)
    by_domain: dict[str, dict[int, dict[int, list[Candidate]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list)))
    for c in candidates:
        by_domain[c.example.domain][c.prediction.rating_true][c.run_index].append(c)
    chosen: dict[str, list[Candidate]] = {}
    for domain in sorted(by_domain):
        queues: dict[int, list[Candidate]] = {}
        for label, per_run in sorted(by_domain[domain].items()):
            for group in per_run.values():
                rng.shuffle(group)
            # Interleave the runs so a label's items spread over the models.
            queue = [c for row in _zip_longest(list(per_run.values())) for c in row]
            queues[label] = queue
        picked: list[Candidate] = []
        while len(picked) < per_domain and any(queues.values()):
            for label in sorted(queues):
                if queues[label] and len(picked) < per_domain:
                    picked.append(queues[label].pop(0))
        if len(picked) < per_domain:
            warnings.append(f"domain {domain}: only {len(picked)} of {per_domain} items available")
        rng.shuffle(picked)
        chosen[domain] = picked
    return chosen


def _zip_longest(groups: list[list[Candidate]]) -> list[list[Candidate]]:
    longest = max((len(g) for g in groups), default=0)
    return [[g[i] for g in groups if i < len(g)] for i in range(longest)]


def create_study(cfg: CreateConfig, out: Path) -> CreateResult:
    """Write OUT/study.sqlite; return the admin token (print it: only its hash is stored)."""
    out = Path(out)
    if (out / DB_NAME).exists():
        raise FileExistsError(f"{out / DB_NAME} already exists; choose a new --out")
    if cfg.per_domain < 1 or cfg.raters < 1:
        raise ValueError("--per-domain and --raters must be at least 1")
    warnings: list[str] = []
    pools = load_references(Path(cfg.references)) if cfg.references else None
    runs = [Path(r) for r in cfg.runs]
    infos, candidates = load_candidates(runs, pools, warnings)
    if not candidates:
        if pools is not None:
            assert cfg.references is not None  # pools are loaded only from references
            raise EmptyPoolsError(f"{cfg.references}: no prediction with a reasoning has a non-empty reference "
                                  "pool, so the study would have 0 items; nothing written. "
                                  + empty_pools_advice(Path(cfg.references)))
        raise ValueError("no prediction with a reasoning text: the study would have 0 items; nothing written")
    chosen = balanced_sample(candidates, cfg.per_domain, cfg.seed, warnings)
    scrubber = Scrubber()
    with StudyDB(out, create=True) as db:
        admin = db.init_study({"runs": list(cfg.runs), "references": cfg.references, "per_domain": cfg.per_domain,
                               "raters": cfg.raters, "seed": cfg.seed, "redact": cfg.redact})
        with db.write() as conn:
            run_ids = []
            for entry in infos:
                rc = entry["info"].get("config") or {}
                model = rc.get("model") or entry["info"].get("model_id") or entry["info"].get("step", "unknown")
                run_ids.append(db.add_run(conn, entry["path"], model, rc.get("method"), rc.get("ablation")))
            for picked in chosen.values():
                for c in picked:
                    _store(db, conn, c, run_ids[c.run_index], infos[c.run_index]["info"], cfg.redact, scrubber)
    counts = {d: _label_counts(p) for d, p in chosen.items()}
    return CreateResult(admin, sum(len(p) for p in chosen.values()), counts, warnings)


def _label_counts(picked: list[Candidate]) -> dict[int, int]:
    counts = {r: 0 for r in range(1, 6)}
    for c in picked:
        counts[c.prediction.rating_true] += 1
    return counts


def _store(db: StudyDB, conn: Any, c: Candidate, run_id: int, info: dict[str, Any], redact: bool,
           scrubber: Scrubber) -> None:
    rc = info.get("config") or {}
    ablation = rc.get("ablation") or "none"
    # The one-shot ablation shows the same history lines as "none"; its worked example is not the user's.
    shown_ablation = as_ablation("none" if ablation == "one-shot" else ablation)
    builder = PromptBuilder(c.example.domain, PromptOptions(method="cot", ablation=shown_ablation))
    dropped = int((info.get("history_items_dropped_to_fit") or {}).get(c.example.example_id, 0))
    example = c.example
    if dropped:
        example = replace(example, history=example.history[dropped:])
    history, new_item = split_prompt(builder.rating_prompt(example))
    original = (c.prediction.reasoning or "").strip()
    shown, n = redact_prediction(original, scrubber) if redact else (original, 0)
    db.add_item(conn, run_id=run_id, example_id=example.example_id, domain=example.domain,
                item_label=DOMAIN_WORDS[example.domain]["Item"], rating_true=c.prediction.rating_true,
                rating_pred=c.prediction.rating_pred, history=history, new_item=new_item, reasoning=shown or REDACTED,
                reasoning_original=original, redacted=n)
