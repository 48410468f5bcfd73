"""Zero-shot rating prediction with or without reasoning (paper Sections 2.2, 4.2; Table 3).

Every model call goes through the SQLite cache, and predictions are assembled
from it at the end, so a run killed at any point and started again recomputes
nothing and writes identical outputs.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..backends.base import Backend, Generation, GenerationRequest, SamplingParams
from ..config.schema import PredictConfig
from ..data.records import Example, Prediction
from ..metrics import rating_metrics
from ..prompts import OneShot, ParsedAnswer, PromptBuilder, PromptOptions, choose_one_shot, parse_answer
from ..prompts.builder import as_ablation, as_method
from ..prompts.grammar import rating_grammar
from ..prompts.parse import split_thinking
from ..store import METRICS, DataStore, RunStore, load_split
from .engine import cached_backend
from .runs import no_metrics, write_run

ResultHook = Callable[[int, Generation], None]


def make_builder(cfg: PredictConfig, examples: Sequence[Example]) -> PromptBuilder:
    domain = examples[0].domain
    one_shot = None
    if cfg.ablation == "one-shot":
        train = load_split(Path(cfg.data), "train")
        shot = choose_one_shot(train, exclude_users={e.user_id for e in examples}, seed=cfg.seed)
        reasoning = cfg.one_shot_reasoning or default_one_shot_reasoning(shot)
        one_shot = OneShot(example=shot, reasoning=reasoning)
    options = PromptOptions(method=as_method(cfg.method), ablation=as_ablation(cfg.ablation))
    return PromptBuilder(domain, options, one_shot=one_shot)


def default_one_shot_reasoning(example: Example) -> str:
    """A plain, factual worked reasoning built from the shot's own history (no model call needed)."""
    ratings = [h.rating for h in example.history]
    mean = sum(ratings) / len(ratings)
    liked = [h.item.title for h in example.history if h.rating >= 4 and h.item.title][:2]
    disliked = [h.item.title for h in example.history if h.rating <= 2 and h.item.title][:1]
    parts = [f"The user's past ratings average {mean:.1f} out of 5."]
    if liked:
        parts.append("They rated highly: " + "; ".join(liked) + ".")
    if disliked:
        parts.append("They disliked: " + "; ".join(disliked) + ".")
    parts.append("The new item is compared with these preferences to predict the rating.")
    return " ".join(parts)


def build_requests(cfg: PredictConfig, builder: PromptBuilder, examples: Sequence[Example],
                   backend: Backend) -> tuple[list[GenerationRequest], dict[str, int]]:
    """One request per example and sample; histories trimmed (oldest first) to fit the context."""
    params = SamplingParams(temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.tokens, seed=cfg.seed)
    # Unbounded lines: bounded repetition is slow in llama.cpp; an answer that runs out of
    # tokens gets its rating forced from P(1..5) instead (see `aggregate`).
    grammar = rating_grammar(cfg.method, max_lines=8, max_line_chars=None) if cfg.grammar else None

    def count(text: str) -> int:
        return backend.count_tokens(GenerationRequest.from_messages([{"role": "user", "content": text}]))

    requests: list[GenerationRequest] = []
    dropped: dict[str, int] = {}
    for ex in examples:
        fitted, n_dropped = builder.fit(ex, count, backend.context_length - cfg.tokens - 16)
        if n_dropped:
            dropped[ex.example_id] = n_dropped
        base = GenerationRequest.from_messages(builder.messages(fitted), params=params, grammar=grammar,
                                               rating_probs=cfg.rating_probs, tag=ex.example_id)
        requests.extend(base.with_sample(s) for s in range(cfg.samples))
    return requests, dropped


def sample_rating(parsed: ParsedAnswer, generation: Generation, force: bool) -> tuple[int | None, str | None]:
    """The parsed rating; else, with `force`, the most likely digit after an appended rating header.

    Forcing the header once the token budget is spent is how an answer that ran out inside its
    reasoning still gets a rating (shared/design/MODELS.md); it is counted separately.
    """
    if parsed.rating is not None:
        return parsed.rating, "parsed"
    if force and generation.rating_probs is not None:
        probs = generation.rating_probs
        return max(range(5), key=lambda k: probs[k]) + 1, "forced"
    return None, None


def thinking_of(generation: Generation) -> str | None:
    """A reasoning model's thinking: what the server returned apart (`reasoning_content`) and the
    `<think>` block of the text (which the parsers leave out of the answer), or None for a model that does
    not think aloud. One definition for predictions, distillation samples and Rec-SAVER candidates."""
    in_text = split_thinking(generation.text)[0] if generation.text else None
    parts = [t for t in (generation.thinking, in_text) if t]
    return "\n\n".join(parts) if parts else None


def aggregate(example: Example, parsed: list[ParsedAnswer], generations: list[Generation],
              force: bool = True) -> Prediction:
    """One prediction from M samples: majority rating (ties -> closest to the mean), mean P(1..5)."""
    rated = [sample_rating(p, g, force) for p, g in zip(parsed, generations)]
    ratings = [r for r, _ in rated if r is not None]
    sources = {s for _, s in rated if s is not None}
    rating = None
    if ratings:
        counts = Counter(ratings)
        top = max(counts.values())
        mean = sum(ratings) / len(ratings)
        rating = min((r for r, c in counts.items() if c == top), key=lambda r: (abs(r - mean), r))
    probs_list = [g.rating_probs for g in generations if g.rating_probs is not None]
    probs = tuple(sum(col) / len(probs_list) for col in zip(*probs_list)) if probs_list else None
    first = parsed[0]
    errors = [g.error or "no text" for g in generations if not g.ok]
    if errors:  # a call that failed is no answer: never scored as one (see metrics.rating)
        return Prediction(example_id=example.example_id, rating_true=example.rating, rating_pred=None,
                          status="failed", error=errors[0])
    return Prediction(
        example_id=example.example_id, rating_true=example.rating, rating_pred=rating, probs=probs,
        reasoning=first.reasoning, raw=generations[0].text if generations[0].text is not None else None,
        rating_source=None if rating is None else ("parsed" if sources == {"parsed"} else "forced"),
        thinking=thinking_of(generations[0]),
    )


def quality_warnings(cfg: PredictConfig, predictions: Sequence[Prediction], format_ok: float) -> list[str]:
    """Outputs that look like numbers but say little: forced ratings, one rating for everything.

    Printed by the CLI and kept in run.json, so a degenerate default run is explained, not just scored.
    """
    answered = [p for p in predictions if not p.failed]
    if not answered:
        return []
    out = []
    forced = sum(p.rating_source == "forced" for p in answered)
    unparsed = sum(p.rating_pred is None for p in answered)
    hint = ("try --grammar (the answer format is then enforced) or a larger model, e.g. --model "
            "llamacpp/qwen2.5-0.5b" if not cfg.grammar else "try a larger model, e.g. --model llamacpp/qwen2.5-0.5b")
    if forced * 2 >= len(answered) and forced:
        out.append(f"{forced} of {len(answered)} answers gave no rating of their own (the format was followed in "
                   f"{format_ok:.0%} of the answers); their ratings were forced from P(1..5) after an appended "
                   f"rating header, so these metrics measure the model's next-token guess, not its reasoning; {hint}")
    if unparsed * 2 >= len(answered) and unparsed:
        out.append(f"{unparsed} of {len(answered)} answers have no rating and count as wrong; {hint}")
    rated = {p.rating_pred for p in answered if p.rating_pred is not None}
    if len(answered) >= 4 and len(rated) == 1:
        out.append(f"every prediction is {rated.pop()}: the model does not tell these examples apart "
                   f"(gold ratings: {sorted({p.rating_true for p in answered})}); {hint}")
    return out


def _thinking_chars(generation: Generation) -> int:
    return len(thinking_of(generation) or "")


def ledger(generations: Sequence[Generation], wall_s: float, hits: int, misses: int,
           waited: int = 0) -> dict[str, Any]:
    fresh = [g for g in generations if not g.cached]
    prompt = sum(g.prompt_tokens for g in generations)
    completion = sum(g.completion_tokens for g in generations)
    fresh_completion = sum(g.completion_tokens for g in fresh)
    # Completion tokens already include the thinking where the server counts it; its length is shown
    # apart, and only for runs that have any (other runs' ledgers stay as they were).
    thinking = sum(_thinking_chars(g) for g in generations)
    return {
        "requests": len(generations), "cache_hits": hits, "cache_misses": misses,
        "waited_for_another_process": waited,  # of the hits: computed meanwhile by another run on this cache
        "failed": sum(1 for g in generations if not g.ok),
        "prompt_tokens": prompt, "completion_tokens": completion,
        "model_seconds": round(sum(g.latency_s for g in generations), 3),
        "wall_seconds_this_run": round(wall_s, 3),
        "completion_tokens_per_s_this_run": round(fresh_completion / wall_s, 2) if wall_s > 0 else None,
        **({"thinking_chars": thinking} if thinking else {}),
    }


@dataclass(frozen=True)
class Generated:
    """One split asked of one model: what `run_predict` and the teacher sampling both build on."""

    examples: list[Example]
    requests: list[GenerationRequest]
    generations: list[Generation]
    dropped: dict[str, int]  # example_id -> oldest history items dropped to fit the context
    model_id: str
    ledger: dict[str, Any]

    @property
    def failures(self) -> list[tuple[str | None, str | None]]:
        return [(r.tag, g.error) for r, g in zip(self.requests, self.generations) if not g.ok]


def generate_split(cfg: PredictConfig, on_result: ResultHook | None = None,
                   on_start: Callable[[int], None] | None = None) -> Generated:
    """Load the split, build one request per example and sample, and answer them through the cache."""
    examples = load_split(Path(cfg.data), cfg.split, cfg.limit)
    builder = make_builder(cfg, examples)
    with cached_backend(cfg) as backend:
        requests, dropped = build_requests(cfg, builder, examples, backend)
        if on_start:
            on_start(len(requests))
        started = time.perf_counter()
        generations = backend.generate(requests, on_result=on_result)
        wall = time.perf_counter() - started
    return Generated(examples, requests, generations, dropped, backend.model_id,
                     ledger(generations, wall, backend.stats.hits, backend.stats.misses, backend.stats.waited))


def run_predict(cfg: PredictConfig, out: Path, on_result: ResultHook | None = None,
                on_start: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Write RUN/predictions.jsonl, RUN/metrics.json, RUN/run.json; return the metrics."""
    store = RunStore(out)
    run = generate_split(cfg, on_result, on_start)
    examples, requests, generations = run.examples, run.requests, run.generations

    predictions, format_ok = [], 0
    for k, ex in enumerate(examples):
        gens = generations[k * cfg.samples:(k + 1) * cfg.samples]
        parsed = [parse_answer(g.text, cfg.method) for g in gens]
        format_ok += sum(p.format_ok for p in parsed)
        predictions.append(aggregate(ex, parsed, gens, cfg.force_rating))
    store.write_predictions(predictions)
    answered = [p for p in predictions if not p.failed]
    if cfg.samples > 1:
        store.write_samples({"example_id": r.tag, "sample_index": r.sample_index, **g.to_dict()}
                            for r, g in zip(requests, generations))
    warnings = quality_warnings(cfg, predictions, format_ok / len(generations))
    if answered:
        metrics = rating_metrics(predictions)
        metrics["warnings"] = warnings
        metrics["format_ok_share"] = format_ok / len(generations)
        metrics["forced_rating_share"] = sum(p.rating_source == "forced" for p in answered) / len(answered)
    else:  # nothing to score: no metrics.json at all rather than numbers made of failures
        metrics = no_metrics(len(predictions))
        store.remove([METRICS])
    write_run(store.folder, step="predict", config={**asdict(cfg), "base_urls": list(cfg.base_urls)},
              data_file=DataStore(Path(cfg.data)).split_path(cfg.split), metrics=metrics if answered else None,
              failures=run.failures, requests=len(requests), extra={
                  "model_id": run.model_id,
                  "ledger": run.ledger,
                  "history_items_dropped_to_fit": run.dropped,
                  "warnings": warnings,
              })
    return metrics
