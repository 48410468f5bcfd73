"""Recorded runs whose output files must stay byte-identical across refactors (issue 16).

A CoT predict run and a Rec-SAVER references run of the default model (SmolLM2) on real Beauty
examples, every option spelled out so a change of a default cannot hide in them. The sha256 of
`predictions.jsonl` and `references.jsonl` were recorded at commit 80fbf8e (before the renovation).
Regenerate (`python -m tests.pinned.runs`) only for an intended change of outputs, and say why.

The texts are the same on every CPU, but the last digits of the stored probabilities are not: llama.cpp's
kernels round differently on another CPU (an AMD EPYC gives other floats than the machine of 80fbf8e, while the
paper-fields hash, which holds no probability, is the same). So runs.json keeps one set of hashes per CPU model
it was recorded on, and a run must equal one of them; running this module adds (or replaces) this CPU's set.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from typer.testing import CliRunner

from recsaver.doctor.cpu import cpu_name

RUNS = Path(__file__).with_name("runs.json")

COMMON = ["--limit", "3", "--seed", "0", "--n-ctx", "2048", "--no-grammar", "--no-progress"]
PREDICT = ["predict", "--method", "cot", "--ablation", "none", "--samples", "1", "--temperature", "0",
           "--top-p", "1", "--max-tokens", "40", "--rating-probs", "--force-rating", *COMMON]
REFERENCES = ["references", "--samples", "2", "--temperature", "0.7", "--max-tokens", "40", "--verify", "exact",
              *COMMON]


# The fields a references row had before issue 18 added the verifier's probabilities, the negative control and
# the judge: their projection must still hash to what commit 80fbf8e wrote.
PAPER_ROW = ("example_id", "rating", "references", "failed_calls", "candidates")
PAPER_CANDIDATE = ("text", "scrubbed_text", "removed_sentences", "error", "verify_rating", "kept", "status")


def paper_fields(references: Path) -> str:
    """sha256 of references.jsonl cut to PAPER_ROW / PAPER_CANDIDATE, in that order, as orjson writes it."""
    import orjson

    digest = hashlib.sha256()
    for line in references.read_bytes().splitlines():
        row = orjson.loads(line)
        cut = {k: row[k] for k in PAPER_ROW}
        cut["candidates"] = [{k: c[k] for k in PAPER_CANDIDATE} for c in row["candidates"]]
        digest.update(orjson.dumps(cut) + b"\n")
    return digest.hexdigest()


def run_all(data: Path, work: Path) -> dict[str, str]:
    """Run both commands (fresh cache) and return the sha256 of each output file."""
    from recsaver.cli import app

    runner, out = CliRunner(), {}
    for name, argv, artifact in (("predict", PREDICT, "predictions.jsonl"),
                                 ("references", REFERENCES, "references.jsonl")):
        folder = work / name
        result = runner.invoke(app, [*argv, "--data", str(data), "--cache", str(work / f"{name}.sqlite"),
                                     "--out", str(folder)])
        assert result.exit_code == 0, (name, result.output)
        out[f"{name}/{artifact}"] = hashlib.sha256((folder / artifact).read_bytes()).hexdigest()
        if name == "references":
            out["references/references.jsonl (paper fields)"] = paper_fields(folder / artifact)
    return out


if __name__ == "__main__":  # python -m tests.pinned.runs
    import tempfile

    from recsaver.data.prepare import PrepareConfig, prepare
    from recsaver.data.sources import FieldCaps
    from tests.conftest import DUMPS

    with tempfile.TemporaryDirectory() as tmp:
        reviews, meta, domain = DUMPS["beauty2023"]
        data = Path(tmp) / "data"
        caps = FieldCaps(title=80, description=120, review_title=60, review_text=160)
        prepare(reviews, meta, data, PrepareConfig(domain=domain, train_per_label=6, test_per_label=2, caps=caps))
        recorded = json.loads(RUNS.read_text()) if RUNS.exists() else {}
        recorded[cpu_name()] = run_all(data, Path(tmp))
        RUNS.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
    sys.stdout.write(RUNS.read_text())
