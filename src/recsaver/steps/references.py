"""Rec-SAVER reference generation with self-verification (paper Section 3.1, Algorithm 1).

For each example: N post-hoc explanations of the gold rating (temperature T),
leakage sentences scrubbed, then a second call rates the item from the history,
the item and the scrubbed explanation alone. An explanation whose verification
rating matches the gold one joins the example's pool of references G.

Issue 18 keeps that as the default (`--verify exact`, the writer verifying) and adds what makes it
measurable and workable with open models: a separate verifier, the verifier's P(1..5) and a
content-free P(1..5) stored per candidate (so `rebuild` applies any mode of metrics/verification.py
without a model call), a negative control (explanations of a wrong rating, which must be rejected)
and a judge of which rating each explanation argues for.

Requests run example by example (explanations, then their verifications) so a
local engine reuses the evaluated history prefix across all calls of an example.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from ..backends.base import Generation, GenerationRequest, ProbeRequest, SamplingParams
from ..config.schema import ReferencesConfig
from ..data.records import Example
from ..metrics.verification import argmax_rating, parse_mode
from ..metrics.verification_audit import audit, mode_summary, rebuild_row
from ..prompts import PromptBuilder, PromptOptions, explanation_grammar, parse_answer, parse_explanation
from ..prompts.grammar import rating_grammar
from ..prompts.leakage import Scrubber
from ..prompts.rating import rating_probe
from ..store import DataStore, RunStore
from .engine import cached_backend
from .predict import ledger, load_split, thinking_of
from .runs import write_run


def negative_targets(gold: int, distance: int, count: int) -> list[int]:
    """The wrong ratings of the negative control: gold +-distance on the scale (both, alternating, when both
    fit), else clipped to 1..5 (so a far distance from a middle rating becomes a shorter one)."""
    options = [r for r in (gold + distance, gold - distance) if 1 <= r <= 5]
    if not options:
        options = sorted({min(5, max(1, gold + distance)), min(5, max(1, gold - distance))} - {gold})
    return [options[n % len(options)] for n in range(count)] if options else []


class ReferenceGenerator:
    """Algorithm 1 over a list of examples: a writer backend, a verifier (default: the writer, as in the
    paper) and an optional judge, each behind the cache.

    Besides the paper's generated verification rating, the verifier's P(1..5 | explanation) and, once per
    example, P(1..5 | a content-free explanation) are read and stored, so the pool can be rebuilt under any
    mode of metrics/verification.py without a model call. With `negatives`, the writer also explains wrong
    ratings (gold +-negative_distance); they are verified against the gold rating, to measure false accepts,
    and never join the pool."""

    def __init__(self, cfg: ReferencesConfig, backend: Any, builder: PromptBuilder,
                 verifier: Any | None = None, judge: Any | None = None):
        self.cfg, self.backend, self.builder = cfg, backend, builder
        self.verifier, self.judge = verifier or backend, judge
        self.mode = parse_mode(cfg.verify)
        self.scrubber = Scrubber(cfg.leak_patterns)
        self.explain_params = SamplingParams(temperature=cfg.temperature, top_p=cfg.top_p,
                                             max_tokens=cfg.max_tokens, seed=cfg.seed)
        self.verify_params = SamplingParams(temperature=0.0, max_tokens=8, seed=cfg.seed)
        self.explain_grammar = explanation_grammar(8, None) if cfg.grammar else None
        self.verify_grammar = rating_grammar("direct") if cfg.grammar else None
        self.all_generations: list[Generation] = []
        self.probes = 0
        self.failures: list[tuple[str | None, str | None]] = []  # (example id, error) of each failed call

    def _fit(self, backend: Any, example: Example, render: Callable[[Example], str], reserve: int) -> Example:
        def count(text: str) -> int:
            return backend.count_tokens(GenerationRequest.from_messages([{"role": "user", "content": text}]))

        fitted, _ = self.builder.fit(example, count, backend.context_length - reserve - 16, render=render)
        return fitted

    def explain_request(self, example: Example, rating: int) -> GenerationRequest:
        """The explanation prompt of `rating` for `example` (sample 0)."""
        def messages(e: Example) -> list[dict[str, str]]:
            return self.builder.explanation_messages(e, rating, self.cfg.explain_prompt)

        fitted = self._fit(self.backend, example, lambda e: messages(e)[0]["content"], self.cfg.max_tokens)
        return GenerationRequest.from_messages(messages(fitted), params=self.explain_params,
                                               grammar=self.explain_grammar, tag=example.example_id)

    def explain_requests(self, example: Example) -> list[GenerationRequest]:
        base = self.explain_request(example, example.rating)
        return [base.with_sample(n) for n in range(self.cfg.samples)]

    def negative_requests(self, example: Example) -> list[tuple[int, GenerationRequest]]:
        targets = negative_targets(example.rating, self.cfg.negative_distance, self.cfg.negatives)
        return [(t, self.explain_request(example, t).with_sample(n)) for n, t in enumerate(targets)]

    def verify_request(self, example: Example, scrubbed: str) -> GenerationRequest:
        def render(e: Example) -> str:
            return self.builder.verification_messages(e, scrubbed, scrub=False)[0]["content"]

        fitted = self._fit(self.verifier, example, render, self.verify_params.max_tokens)
        return GenerationRequest.from_messages(self.builder.verification_messages(fitted, scrubbed, scrub=False),
                                               params=self.verify_params, grammar=self.verify_grammar,
                                               tag=example.example_id)

    def judge_probe(self, example: Example, scrubbed: str) -> ProbeRequest:
        """P(1..5) of the rating the explanation argues for, read by the judge from item + explanation."""
        return rating_probe(GenerationRequest.from_messages(self.builder.judge_messages(example, scrubbed),
                                                            tag=example.example_id), "")

    def _write(self, example: Example) -> list[dict[str, Any]]:
        negatives = self.negative_requests(example)
        requests = self.explain_requests(example) + [r for _, r in negatives]
        targets = [example.rating] * self.cfg.samples + [t for t, _ in negatives]
        explanations = self.backend.generate(requests)
        self.all_generations.extend(explanations)
        candidates = []
        for n, (g, t) in enumerate(zip(explanations, targets)):
            text = parse_explanation(g.text) if g.ok else None
            result = self.scrubber.scrub(text)
            thinking = thinking_of(g)  # kept apart: never in text, never scrubbed, verified or pooled
            candidates.append({"target": t, "negative": n >= self.cfg.samples, "text": text,
                               "scrubbed_text": result.text, "removed_sentences": list(result.removed),
                               "error": g.error, "status": "failed" if g.error else "ok", "verify_rating": None,
                               "verify_probs": None, "verify_mass": None, "kept": False,
                               **({"thinking": thinking} if thinking else {})})
        return candidates

    def _verify(self, example: Example, candidates: list[dict[str, Any]]) -> dict[str, Any]:
        todo = [i for i, c in enumerate(candidates) if c["scrubbed_text"]]
        requests = [self.verify_request(example, candidates[i]["scrubbed_text"]) for i in todo]
        verifications = self.verifier.generate(requests)
        self.all_generations.extend(verifications)
        content_free = rating_probe(self.verify_request(example, ""), "")
        probes = self.verifier.probe([rating_probe(r, "") for r in requests] + [content_free])
        self.probes += len(probes)
        for i, v, p in zip(todo, verifications, probes):
            c = candidates[i]
            c["verify_probs"], c["verify_mass"] = (list(p.probs), p.mass) if p.ok else (None, None)
            if not p.ok:
                c["probs_error"] = p.error
            if not v.ok:  # a verifier that did not answer has not rejected anything: failed, not "not kept"
                c["status"], c["error"] = "failed", v.error or "no text"
                continue
            c["verify_rating"] = parse_answer(v.text, "direct").rating
            if self.mode.needs_probs and not p.ok:
                c["status"], c["error"] = "failed", (f"verify mode {self.mode} needs the verifier's P(1..5), "
                                                     f"which {self.verifier.model_id} did not give: {p.error}")
        cf = probes[-1]
        return {"content_free_probs": list(cf.probs) if cf.ok else None,
                "content_free_error": None if cf.ok else cf.error}

    def _judge(self, judge: Any, example: Example, candidates: list[dict[str, Any]]) -> dict[str, Any]:
        """The judge's P(1..5) per candidate, and once per example its content-free P(1..5) (the explanation
        replaced by the placeholder) so that faithfulness can be read calibrated as well as raw."""
        todo = [c for c in candidates if c["scrubbed_text"] and c["status"] == "ok"]
        probes = judge.probe([self.judge_probe(example, c["scrubbed_text"]) for c in todo]
                             + [self.judge_probe(example, "")])
        self.probes += len(probes)
        for c, p in zip(todo, probes):
            c["judge_probs"] = list(p.probs) if p.ok else None
            c["judge_rating"] = argmax_rating(p.probs) if p.ok and p.probs else None
        free = probes[-1]
        return {"judge_content_free_probs": list(free.probs) if free.ok else None,
                "judge_content_free_error": None if free.ok else free.error}

    def run_example(self, example: Example) -> dict[str, Any]:
        candidates = self._write(example)
        row: dict[str, Any] = {"example_id": example.example_id, "rating": example.rating}
        free = self._verify(example, candidates)
        judged = self._judge(self.judge, example, candidates) if self.judge is not None else {}
        if self.mode.needs_content_free and free["content_free_probs"] is None:
            for c in candidates:
                if c["status"] == "ok":
                    c["status"], c["error"] = "failed", (f"verify mode {self.mode} needs the content-free P(1..5), "
                                                         f"which {self.verifier.model_id} did not give: "
                                                         f"{free['content_free_error']}")
        row.update(free, candidates=candidates)
        row = rebuild_row(row, self.mode)
        failed = [c["error"] for c in row["candidates"] if c["status"] == "failed"]
        self.failures.extend((example.example_id, e) for e in failed)
        # failed_calls > 0: this pool is incomplete; a rerun retries those calls
        return {"example_id": row["example_id"], "rating": row["rating"], "references": row["references"],
                "failed_calls": len(failed), "verify": row["verify"],
                "content_free_probs": row["content_free_probs"], "content_free_error": row["content_free_error"],
                **judged, "candidates": row["candidates"]}


def summarize(rows: Sequence[dict[str, Any]], verify: str) -> dict[str, Any]:
    """The pool under `verify` (coverage, pool sizes, pass rate per gold label, false accepts, scrub counts)
    and the audit of every mode the stored probabilities allow."""
    mode = parse_mode(verify)
    chosen = mode_summary(rows, mode)
    n = len(rows)
    scrubbed_sentences = candidates_scrubbed = emptied = failed = probe_failures = 0
    for row in rows:
        for c in row["candidates"]:
            if c.get("status") == "failed":  # no verdict either way: not in the pass rates
                failed += 1
                continue
            probe_failures += int(c.get("probs_error") is not None)
            scrubbed_sentences += len(c["removed_sentences"])
            candidates_scrubbed += int(bool(c["removed_sentences"]))
            emptied += int(bool(c["text"]) and not c["scrubbed_text"])
    sizes = [len(r["references"]) for r in rows]
    return {
        "examples": n,
        "verify": str(mode),
        "failed_candidates": failed,
        "coverage": sum(1 for s in sizes if s) / n if n else 0.0,
        "mean_pool_size": sum(sizes) / n if n else 0.0,
        "pool_size_histogram": {str(k): v for k, v in sorted(Counter(sizes).items())},
        "pass_rate_per_label": chosen["pass_rate_per_label"],
        "candidates_per_label": chosen["candidates_per_label"],
        "negatives": chosen["negatives"],
        "false_accept_rate": chosen["false_accept_rate"],
        "false_accept_per_distance": chosen["false_accept_per_distance"],
        "confusion": chosen["confusion"],
        "probe_failures": probe_failures,
        "scrub": {"sentences_removed": scrubbed_sentences, "candidates_with_removals": candidates_scrubbed,
                  "candidates_emptied": emptied},
        "audit": audit(rows),
    }


def run_references(cfg: ReferencesConfig, out: Path,
                   on_example: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Write REFS/references.jsonl, REFS/summary.json and REFS/run.json; return the summary."""
    out = Path(out)
    examples = load_split(Path(cfg.data), cfg.split, cfg.limit)
    builder = PromptBuilder(examples[0].domain, PromptOptions(method="cot"))
    rows = []
    with ExitStack() as stack:
        engines: dict[str, Any] = {}

        def engine(model: str) -> Any:  # one backend per distinct model (the writer often verifies too)
            if model not in engines:
                engines[model] = stack.enter_context(cached_backend(replace(cfg, model=model)))
            return engines[model]

        backend = engine(cfg.model)
        generator = ReferenceGenerator(cfg, backend, builder, verifier=engine(cfg.verifier_model or cfg.model),
                                       judge=engine(cfg.judge_model) if cfg.judge_model else None)
        started = time.perf_counter()
        for k, ex in enumerate(examples):
            rows.append(generator.run_example(ex))
            if on_example:
                on_example(k + 1, len(examples))
        wall = time.perf_counter() - started
        hits, misses, waited = (sum(getattr(b.stats, f) for b in engines.values())
                                for f in ("hits", "misses", "waited"))
        model_ids = {"model_id": backend.model_id, "verifier_model_id": generator.verifier.model_id,
                     "judge_model_id": generator.judge.model_id if generator.judge else None}
    store = RunStore(out)
    store.write_references(rows)
    summary = summarize(rows, cfg.verify)
    store.write_summary(summary)
    write_run(out, step="references", config={**asdict(cfg), "base_urls": list(cfg.base_urls),
                                               "leak_patterns": list(cfg.leak_patterns)},
              data_file=DataStore(Path(cfg.data)).split_path(cfg.split), failures=generator.failures,
              requests=len(generator.all_generations), extra={
                  **model_ids, "probes": generator.probes,
                  "ledger": ledger(generator.all_generations, wall, hits, misses, waited),
                  "summary": summary,
              })
    return summary


def rebuild_references(source: Path, verify: str, out: Path) -> dict[str, Any]:
    """The pool of the references run `source` under another verify mode, from its stored verifier outputs:
    no model is called. Writes OUT/references.jsonl, summary.json and run.json; returns the summary."""
    source, out = Path(source), Path(out)
    if out.resolve() == source.resolve():
        raise ValueError(f"{out}: rebuild writes a new folder; give an --out other than the source run")
    mode = parse_mode(verify)
    store = RunStore(source)
    rows = store.read_reference_rows()
    candidates = [c for r in rows for c in r["candidates"]]
    refs = store.references_path
    if mode.needs_probs and not any(c.get("verify_probs") is not None for c in candidates):
        errors = {c.get("probs_error") for c in candidates if c.get("probs_error")}
        why = (f"the verifier gave none: {sorted(errors)[0]}" if errors else
               "it was written before they were stored; rerun `recsaver references` with the same settings "
               "(its explanations and verifications come from the cache) to add them")
        raise ValueError(f"{refs}: verify mode {mode} needs the verifier's P(1..5) (verify_probs), and {why}")
    if mode.needs_content_free and not any(r.get("content_free_probs") is not None for r in rows):
        raise ValueError(f"{refs}: verify mode {mode} needs the content-free P(1..5) (content_free_probs), "
                         "which no row has")
    new_rows = []
    for row in rows:
        rebuilt = rebuild_row(row, mode)
        new_rows.append({**rebuilt, "failed_calls": row.get("failed_calls", 0)})
    target = RunStore(out)
    target.write_references(new_rows)
    summary = summarize(new_rows, str(mode))
    target.write_summary(summary)
    run = store.read_run() or {}
    config = {**run.get("config", {}), "verify": str(mode)}
    target.write_run({**run, "config": config, "summary": summary,
                      "rebuilt_from": {"path": str(source), "verify": run.get("config", {}).get("verify")}})
    return summary
