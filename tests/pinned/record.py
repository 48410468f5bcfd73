"""Pins of what must not change by accident: generation-cache keys and experiment cell hashes.

A rerun is served from the cache and an experiment skips its finished cells only while these stay the
same, so a refactor (issue 16's renovation above all) must keep them, or say which ones changed and why.
`tests/test_pinned_hashes.py` compares today's values with `hashes.json`; after an intended change,
rewrite the file with `python -m tests.pinned.record` and explain the change in the commit.

Cache keys: every request the steps build (predict: each method x ablation with the CLI and the
experiment defaults; references: explanations and a verification; distill sample) for the built-in
beauty sample, hashed per group. Cell hashes: every cell of every shipped config whose hash does not
depend on a machine (data cells of real dumps hash the dump's mtime; student predict cells need a
trained student), with the real dumps from ../shared/data prepared as the configs say.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PINS = Path(__file__).resolve().parent / "hashes.json"


def _digest(keys: list[str]) -> str:
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()


def cache_keys(tmp: Path) -> dict[str, str]:
    from recsaver.data.prepare import PrepareConfig, prepare
    from recsaver.prompts import ABLATIONS, PromptBuilder, PromptOptions
    from recsaver.sample import sample_files
    from recsaver.steps.demo import demo_config
    from recsaver.steps.distill import DistillSampleConfig
    from recsaver.steps.engine import cached_backend
    from recsaver.steps.predict import PredictConfig, build_requests, load_split, make_builder
    from recsaver.steps.references import ReferenceGenerator, ReferencesConfig

    data = tmp / "beauty"
    split = demo_config().prepare  # the demo's sizes: the sample has 10 users a domain
    prepare(*sample_files("beauty"), data, PrepareConfig(domain="beauty", train_per_label=split.train_per_label,
                                                         test_per_label=split.test_per_label,
                                                         test_fraction=split.test_fraction))
    examples = load_split(data, "test")
    cache = str(tmp / "cache.sqlite")
    out: dict[str, str] = {}
    with cached_backend(PredictConfig(data=str(data), cache=cache)) as backend:
        def keys(cfg: PredictConfig) -> str:
            requests, _ = build_requests(cfg, make_builder(cfg, examples), examples, backend)
            return _digest([r.key(backend.model_id) for r in requests])

        for method in ("cot", "direct"):
            for ablation in ABLATIONS:
                out[f"predict/{method}/{ablation}/cli"] = keys(PredictConfig(
                    data=str(data), method=method, ablation=ablation, cache=cache))
                out[f"predict/{method}/{ablation}/experiment"] = keys(PredictConfig(
                    data=str(data), method=method, ablation=ablation, grammar=True, cache=cache,
                    max_tokens=350 if method == "cot" else 16))
        sample = DistillSampleConfig(data=str(data), split="test", model="llamacpp/smollm2-135m", cache=cache)
        out["distill-sample"] = keys(sample.predict_config())
        for grammar in (False, True):
            rcfg = ReferencesConfig(data=str(data), grammar=grammar, cache=cache)
            gen = ReferenceGenerator(rcfg, backend, PromptBuilder("beauty", PromptOptions(method="cot")))
            refs = [r.key(backend.model_id) for ex in examples for r in gen.explain_requests(ex)]
            refs += [gen.verify_request(ex, "The user likes gentle products.").key(backend.model_id) for ex in examples]
            out[f"references/grammar={grammar}"] = _digest(refs)
    return out


def cell_hashes(tmp: Path) -> dict[str, dict[str, str]]:
    from recsaver.config import load_config
    from recsaver.steps.experiment import ExperimentRunner, plan

    out: dict[str, dict[str, str]] = {}
    for path in sorted((REPO / "configs").glob("*.yaml")):
        cfg = load_config(path)
        runner = ExperimentRunner(cfg, tmp / path.stem)
        pins: dict[str, str] = {}
        for cell in plan(cfg):
            if cell.kind == "predict" and str(cell.labels.get("model", "")).startswith("@"):
                continue  # its settings name the trained student, which needs training first
            if any(d not in runner.hashes for d in cell.deps):
                continue  # depends on a cell left out
            digest = runner.cell_hash(cell)
            if cell.kind == "data":
                runner.execute(cell)
                runner.hashes[cell.name] = runner.content_hash(cell)
                if cfg.domain(cell.domain).sample:  # a real dump's identity includes its mtime
                    pins[cell.name] = digest
                pins[cell.name + " (content)"] = runner.hashes[cell.name]
                continue
            runner.hashes[cell.name] = digest
            pins[cell.name] = digest
        out[path.stem] = pins
    return out


def current() -> dict[str, Any]:
    cwd = os.getcwd()
    os.chdir(REPO)  # the configs name their dumps relative to the repository (../shared/data)
    try:
        with tempfile.TemporaryDirectory() as name:
            tmp = Path(name)
            return {"cache_keys": cache_keys(tmp), "cells": cell_hashes(tmp)}
    finally:
        os.chdir(cwd)


if __name__ == "__main__":
    PINS.write_text(json.dumps(current(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {PINS}")
