"""Rec-SAVER reference generation with self-verification (paper Section 3.1, Algorithm 1).

For each example: N post-hoc explanations of the gold rating (temperature T),
leakage sentences scrubbed, then a second call rates the item from the history,
the item and the scrubbed explanation alone. An explanation whose verification
rating matches the gold one joins the example's pool of references G.

Requests run example by example (explanations, then their verifications) so a
local engine reuses the evaluated history prefix across all 2N calls.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..backends.base import Generation, GenerationRequest, SamplingParams
from ..config.schema import ReferencesConfig
from ..data.records import RATINGS, Example
from ..prompts import PromptBuilder, PromptOptions, explanation_grammar, parse_answer, parse_explanation
from ..prompts.grammar import rating_grammar
from ..prompts.leakage import Scrubber
from ..store import DataStore, RunStore
from .engine import cached_backend
from .predict import ledger, load_split
from .runs import write_run


def kept(rule: str, verify_rating: int | None, gold: int) -> bool:
    if rule == "none":
        return True
    if verify_rating is None:
        return False
    return verify_rating == gold if rule == "exact" else abs(verify_rating - gold) <= 1


class ReferenceGenerator:
    """Algorithm 1 over a list of examples with one backend (cached)."""

    def __init__(self, cfg: ReferencesConfig, backend: Any, builder: PromptBuilder):
        self.cfg, self.backend, self.builder = cfg, backend, builder
        self.scrubber = Scrubber(cfg.leak_patterns)
        self.explain_params = SamplingParams(temperature=cfg.temperature, top_p=cfg.top_p,
                                             max_tokens=cfg.max_tokens, seed=cfg.seed)
        self.verify_params = SamplingParams(temperature=0.0, max_tokens=8, seed=cfg.seed)
        self.explain_grammar = explanation_grammar(8, None) if cfg.grammar else None
        self.verify_grammar = rating_grammar("direct") if cfg.grammar else None
        self.all_generations: list[Generation] = []
        self.failures: list[tuple[str | None, str | None]] = []  # (example id, error) of each failed call

    def _fit(self, example: Example, render: Callable[[Example], str], reserve: int) -> Example:
        def count(text: str) -> int:
            return self.backend.count_tokens(GenerationRequest.from_messages([{"role": "user", "content": text}]))

        fitted, _ = self.builder.fit(example, count, self.backend.context_length - reserve - 16, render=render)
        return fitted

    def explain_requests(self, example: Example) -> list[GenerationRequest]:
        def render(e: Example) -> str:
            return self.builder.explanation_messages(e, example.rating)[0]["content"]

        fitted = self._fit(example, render, self.cfg.max_tokens)
        base = GenerationRequest.from_messages(self.builder.explanation_messages(fitted, example.rating),
                                               params=self.explain_params, grammar=self.explain_grammar,
                                               tag=example.example_id)
        return [base.with_sample(n) for n in range(self.cfg.samples)]

    def verify_request(self, example: Example, scrubbed: str) -> GenerationRequest:
        def render(e: Example) -> str:
            return self.builder.verification_messages(e, scrubbed, scrub=False)[0]["content"]

        fitted = self._fit(example, render, self.verify_params.max_tokens)
        return GenerationRequest.from_messages(self.builder.verification_messages(fitted, scrubbed, scrub=False),
                                               params=self.verify_params, grammar=self.verify_grammar,
                                               tag=example.example_id)

    def run_example(self, example: Example) -> dict[str, Any]:
        explanations = self.backend.generate(self.explain_requests(example))
        candidates = []
        for g in explanations:
            text = parse_explanation(g.text) if g.ok else None
            result = self.scrubber.scrub(text)
            candidates.append({"text": text, "scrubbed_text": result.text, "removed_sentences": list(result.removed),
                               "error": g.error})
        todo = [i for i, c in enumerate(candidates) if c["scrubbed_text"]]
        verifications = self.backend.generate([self.verify_request(example, candidates[i]["scrubbed_text"])
                                               for i in todo])
        self.all_generations.extend(explanations)
        self.all_generations.extend(verifications)
        for c in candidates:
            c["verify_rating"], c["kept"] = None, False
            c["status"] = "failed" if c["error"] else "ok"
        for i, v in zip(todo, verifications):
            if not v.ok:  # a verifier that did not answer has not rejected anything: failed, not "not kept"
                candidates[i]["status"], candidates[i]["error"] = "failed", v.error or "no text"
                continue
            rating = parse_answer(v.text, "direct").rating
            candidates[i]["verify_rating"] = rating
            candidates[i]["kept"] = kept(self.cfg.verify, rating, example.rating)
        failed = [c["error"] for c in candidates if c["status"] == "failed"]
        self.failures.extend((example.example_id, e) for e in failed)
        return {
            "example_id": example.example_id,
            "rating": example.rating,
            "references": [c["scrubbed_text"] for c in candidates if c["kept"]],
            "failed_calls": len(failed),  # > 0: this pool is incomplete; a rerun retries those calls
            "candidates": candidates,
        }


def summarize(rows: Sequence[dict[str, Any]], verify: str) -> dict[str, Any]:
    n = len(rows)
    per_label: dict[str, Counter] = defaultdict(Counter)
    scrubbed_sentences = candidates_scrubbed = emptied = 0
    failed = 0
    for row in rows:
        label = str(row["rating"])
        for c in row["candidates"]:
            if c.get("status") == "failed":  # no verdict either way: not in the pass rates
                failed += 1
                continue
            per_label[label]["candidates"] += 1
            per_label[label]["kept"] += int(c["kept"])
            scrubbed_sentences += len(c["removed_sentences"])
            candidates_scrubbed += int(bool(c["removed_sentences"]))
            emptied += int(bool(c["text"]) and not c["scrubbed_text"])
    sizes = [len(r["references"]) for r in rows]
    return {
        "examples": n,
        "verify": verify,
        "failed_candidates": failed,
        "coverage": sum(1 for s in sizes if s) / n if n else 0.0,
        "mean_pool_size": sum(sizes) / n if n else 0.0,
        "pool_size_histogram": {str(k): v for k, v in sorted(Counter(sizes).items())},
        "pass_rate_per_label": {
            str(r): (per_label[str(r)]["kept"] / per_label[str(r)]["candidates"]
                     if per_label[str(r)]["candidates"] else None) for r in RATINGS},
        "candidates_per_label": {str(r): per_label[str(r)]["candidates"] for r in RATINGS},
        "scrub": {"sentences_removed": scrubbed_sentences, "candidates_with_removals": candidates_scrubbed,
                  "candidates_emptied": emptied},
    }


def run_references(cfg: ReferencesConfig, out: Path,
                   on_example: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Write REFS/references.jsonl, REFS/summary.json and REFS/run.json; return the summary."""
    out = Path(out)
    examples = load_split(Path(cfg.data), cfg.split, cfg.limit)
    builder = PromptBuilder(examples[0].domain, PromptOptions(method="cot"))
    rows = []
    with cached_backend(cfg) as backend:
        generator = ReferenceGenerator(cfg, backend, builder)
        started = time.perf_counter()
        for k, ex in enumerate(examples):
            rows.append(generator.run_example(ex))
            if on_example:
                on_example(k + 1, len(examples))
    wall = time.perf_counter() - started
    store = RunStore(out)
    store.write_references(rows)
    summary = summarize(rows, cfg.verify)
    store.write_summary(summary)
    write_run(out, step="references", config={**asdict(cfg), "base_urls": list(cfg.base_urls),
                                               "leak_patterns": list(cfg.leak_patterns)},
              data_file=DataStore(Path(cfg.data)).split_path(cfg.split), failures=generator.failures,
              requests=len(generator.all_generations), extra={
                  "model_id": backend.model_id,
                  "ledger": ledger(generator.all_generations, wall, backend.stats.hits, backend.stats.misses,
                                   backend.stats.waited),
                  "summary": summary,
              })
    return summary
