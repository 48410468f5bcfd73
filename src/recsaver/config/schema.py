"""Each generating step's config: the one definition of its fields, defaults, help text and checks.

The command line options of `predict`, `references` and `distill sample` are generated from these
dataclasses (recsaver/cli/options.py), and an experiment config's `predict` and `references` sections
are built from the same fields (settings.py), so a default is declared once and is the same from the
command line, an experiment and the demo. A field's metadata carries its help text, its allowed values
(`choices`, checked in `__post_init__` by `check_choices`) and, where the flag is not the field name,
its command line flag (`flag`).

Values that depend on the method live in METHOD_DEFAULTS: a field left at None takes its method's
value in `__post_init__`, so the resolved config (what a run.json, a cache key and a cell hash see)
always holds the number that was used.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

DEFAULT_MODEL = "llamacpp/smollm2-135m"
SPLITS = ("train", "test")
METHODS = ("cot", "direct")
ABLATIONS = ("none", "no-review", "no-review-no-rating", "no-description", "one-shot")
VERIFY_RULES = ("exact", "1-off", "none")  # the paper's; metrics/verification.py adds prob:TAU and calibrated
VERIFY_HELP = ("exact (paper) | 1-off | none | prob:TAU | calibrated[:TAU] | calibrated-1-off[:TAU] "
               "(metrics/verification.py)")
BALANCE = ("round-robin", "least-busy")
EXECUTORS = ("local", "ray")  # where generation (and finetune) runs: this process, or a Ray cluster
DOMAINS = ("beauty", "movies", "generic")  # generic: users' own data (`data import`), neutral wording

# Per method: CoT needs room to reason; a direct answer is a rating line (16 tokens hold the header
# and a digit with any tokenizer we ship).
METHOD_DEFAULTS: dict[str, dict[str, Any]] = {"cot": {"max_tokens": 350}, "direct": {"max_tokens": 16}}

# The paper's phrases, then digit-with-rating forms: "5/5", "4 out of 5", "rated it 4",
# "gave it a 2", "five-star", "4-star", "a 5". The default of `references --leak-pattern`.
LEAK_PATTERNS: tuple[str, ...] = (
    r"\ba rating of\b",
    r"\bstars?\b",
    r"\bscores?\b",
    r"\b(?:[1-5]|one|two|three|four|five)\s*(?:/|out\s+of)\s*(?:5|five)\b",
    r"\brated\b(?:\s+\w+){0,3}?\s+(?:a\s+)?(?:[1-5]|one|two|three|four|five)\b",
    r"\bgave\b(?:\s+\w+){0,3}?\s+(?:a\s+)?(?:[1-5]|one|two|three|four|five)\b",
    r"\b(?:[1-5]|one|two|three|four|five)[\s-]*star\b",
    r"\brating\b[^.!?\n]{0,15}\b[1-5]\b",
)


def setting(default: Any = dataclasses.MISSING, help: str = "", *, choices: tuple[Any, ...] | None = None,
            flag: str | None = None, comma: bool = False) -> Any:
    """A config field with its help text, allowed values and command line flag in its metadata; `comma`:
    a list option that also takes comma-separated items (`--metrics bleu,rouge1`)."""
    meta = {"help": help, "choices": choices, "flag": flag, "comma": comma}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def check_choices(cfg: Any) -> None:
    """Every field with `choices` holds an allowed value (each item, for a tuple field)."""
    for f in dataclasses.fields(cfg):
        allowed = f.metadata.get("choices")
        value = getattr(cfg, f.name)
        if allowed is None or value is None:
            continue
        for v in value if isinstance(value, tuple) else (value,):
            if v not in allowed:
                raise ValueError(f"{f.name} must be one of {', '.join(map(str, allowed))}; got {v!r}")


def check_sampling(samples: int, temperature: float) -> None:
    """The one check that several samples of a prompt can differ."""
    if samples < 1:
        raise ValueError("samples must be >= 1")
    if samples > 1 and temperature == 0:
        raise ValueError("samples > 1 needs temperature > 0, or every sample is the same")


@dataclass(frozen=True, kw_only=True)
class PrepareOptions:
    """`recsaver data prepare` settings (less the domain): also an experiment's `prepare` section."""

    train_per_label: int = setting(800, "Train examples per rating label.")
    test_per_label: int = setting(100, "Test examples per rating label.")
    test_fraction: float | None = setting(None, "Share of users in test (default: test/(train+test)).")
    min_history: int = setting(4, "Fewest earlier reviews a target needs.")
    max_history: int = setting(10, "Most earlier reviews a target may have / history kept.")
    targets: str = setting("all", "Every eligible review, or each user's last one.", choices=("all", "last"))
    # "skip": a review with more than max_history earlier reviews is not a target (the paper's
    # 4 <= |H_u| <= 10); "truncate": it is, with the most recent max_history.
    history_overflow: str = setting("skip", "Targets with more than max-history earlier reviews.",
                                    choices=("skip", "truncate"))
    seed: int = setting(0, "Seed for the user split and the sampling.")
    on_bad_line: str = setting("error", "Stop at a bad line, or skip it (counted in stats.json).",
                               choices=("error", "skip"))
    max_description_chars: int = setting(600, "Cap on item descriptions.")
    max_review_chars: int = setting(1200, "Cap on review texts.")


@dataclass(frozen=True, kw_only=True)
class ScoreOptions:
    """`recsaver score` settings (less its inputs): also an experiment's `score` section."""

    metrics: tuple[str, ...] = setting((), "Text metrics, repeatable or comma-separated (default: every metric in "
                                           "the registry, recsaver/metrics/text/registry.py).", comma=True)
    resamples: int = setting(1000, "Bootstrap resamples for the 95% CIs.")
    seed: int = setting(0, "Bootstrap seed.")


@dataclass(frozen=True)
class ScoreConfig(ScoreOptions):
    references: str = setting(help="A references folder from `recsaver references`.")
    predictions: str | None = setting(None, "A run folder (or its predictions.jsonl).")
    outputs: str | None = setting(None, "Instead of --predictions: a JSONL file of any system's explanations, one "
                                        "object per line (fields: --id-field, --text-field, --rating-field).")
    id_field: str = setting("example_id", "With --outputs: the field holding the example id of the references run.")
    text_field: str = setting("text", "With --outputs: the field holding the explanation.")
    rating_field: str | None = setting(None, "With --outputs: the field holding the predicted rating (optional; "
                                             "splits the scores by correctness).")

    def __post_init__(self) -> None:
        if (self.predictions is None) == (self.outputs is None):
            raise ValueError("give exactly one of --predictions (a recsaver run) and --outputs (any system's "
                             "explanations as JSONL)")


@dataclass(frozen=True, kw_only=True)
class SamplingFields:
    """Sampling fields of every generating step."""

    top_p: float = setting(1.0, "Nucleus sampling.")
    seed: int = setting(0, "Sampling seed.")
    limit: int | None = setting(None, "Use only the first N examples.")


@dataclass(frozen=True, kw_only=True)
class ServerFields:
    """Where and how the engine runs (shared by the steps of an experiment: its predict section)."""

    n_ctx: int = setting(4096, "Context window to allocate / assume.")
    base_urls: tuple[str, ...] = setting((), "OpenAI-compatible server(s) for openai/... (repeatable).",
                                         flag="base-url")
    concurrency: int = setting(4, "Parallel requests for server backends.")
    parallel: int = setting(8, "Sequences llamacpp/... decodes together (continuous batching; 1 = one at a "
                               "time, as before; outputs equal up to kernel rounding, docs/benchmarks.md).")
    balance: str = setting("round-robin", "How openai/... spreads requests over several --base-url servers.",
                           choices=BALANCE)
    cache: str | None = setting(None, "SQLite generation cache (default ~/.cache/recsaver/generations.sqlite).")
    # Named batch_api, not batch: FinetuneConfig.batch (rows per device batch) is hashed, this is not.
    batch_api: bool = setting(False, "Send openai/... generations through the OpenAI Batch API (half price, results "
                                     "within 24 h; resumable by batch id; README: Models and engines).", flag="batch")
    executor: str = setting("local", "Where the model runs: in this process, or on a pool of Ray actors, one backend "
                                     "each (README: Scale-out).", choices=EXECUTORS)
    ray_address: str = setting("auto", "With --executor ray: the cluster to join (auto: the one `ray start` made on "
                                       "this machine; HOST:PORT; local: start one in this process).")
    ray_actors: int | None = setting(None, "With --executor ray: backend actors (default: as many as the cluster's "
                                           "CPUs (GPUs with --ray-gpus) hold).")
    ray_cpus: float = setting(1.0, "With --executor ray: CPUs per actor (a llamacpp/... actor uses as many threads).")
    ray_gpus: float = setting(0.0, "With --executor ray: GPUs per actor (hf/... and vllm/... on GPU nodes).")
    extra: dict[str, Any] = setting({}, "Engine-specific options (Python and config files only).")


@dataclass(frozen=True, kw_only=True)
class EngineFields(SamplingFields, ServerFields):
    """Sampling and engine fields that PredictConfig, ReferencesConfig and DistillSampleConfig share.

    Keyword-only, so each step config keeps its own positional fields (data, split, ...) first.
    """

    def engine_values(self) -> dict[str, Any]:
        """These fields by name, to carry them from one step config into another."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(EngineFields)}


@dataclass(frozen=True, kw_only=True)
class PredictOptions(EngineFields):
    """PredictConfig less what names one run (data, model, method...): an experiment's predict section."""

    samples: int = setting(1, "Samples per prompt (majority vote; P(1..5) averaged).")
    temperature: float = setting(0.0, "Sampling temperature.")
    max_tokens: int | None = setting(None, "Most tokens per answer (default by method: cot 350, direct 16).")
    grammar: bool = setting(True, "Constrain the output format (GBNF / guided decoding).")
    rating_probs: bool = setting(True, "Read P(1..5) from the rating-token logits where possible.")
    force_rating: bool = setting(True, "An answer without a rating gets the most likely digit after an appended "
                                       "rating header (needs --rating-probs); counted in metrics.")


@dataclass(frozen=True)
class PredictConfig(PredictOptions):
    data: str = setting(help="Folder written by `recsaver data prepare`.")
    split: str = setting("test", "Which split to predict.", choices=SPLITS)
    model: str = setting(DEFAULT_MODEL, "provider/model, e.g. llamacpp/qwen2.5-0.5b.")
    method: str = setting("cot", "cot (reason, then rate) or direct (rate only).", choices=METHODS)
    ablation: str = setting("none", "Which input the prompt leaves out (paper Table 3).", choices=ABLATIONS)
    one_shot_reasoning: str | None = setting(None, "The worked reasoning of the one-shot ablation's example "
                                                   "(default: a factual summary of its history).")

    def __post_init__(self) -> None:
        check_choices(self)
        check_sampling(self.samples, self.temperature)
        if self.max_tokens is None:
            object.__setattr__(self, "max_tokens", METHOD_DEFAULTS[self.method]["max_tokens"])
        if self.tokens < 1:
            raise ValueError("max_tokens must be >= 1")

    @property
    def tokens(self) -> int:
        """max_tokens as resolved (never None once built)."""
        assert self.max_tokens is not None
        return self.max_tokens


@dataclass(frozen=True, kw_only=True)
class ReferencesOptions(SamplingFields):
    """ReferencesConfig less what names one run: an experiment's references section."""

    samples: int = setting(4, "N post-hoc explanations per example.")
    temperature: float = setting(0.7, "Sampling temperature T of the explanations.")
    max_tokens: int = setting(256, "Most tokens per explanation.")
    grammar: bool = setting(True, "Constrain explanation and verification formats.")
    explain_prompt: str = setting("paper", "Explanation prompt: the paper's; `meaning`, which also says what "
                                           "the rating means and asks for the reasons behind it; or `reasons`, "
                                           "which also says what to argue for that rating.",
                                  choices=("paper", "meaning", "reasons"))
    verifier_model: str | None = setting(None, "provider/model verifying the explanations (default: the writer, "
                                               "as in the paper).")
    judge_model: str | None = setting(None, "provider/model judging which rating each explanation argues for "
                                            "(the writer's faithfulness; default: no judge).")
    negatives: int = setting(0, "Negative control: explanations per example of a wrong rating (gold +-"
                                "negative-distance), verified against the gold rating; never in the pool.")
    negative_distance: int = setting(2, "How far the negative control's rating is from the gold one.")


def check_verify(modes: tuple[str, ...] | str) -> None:
    """Each verify mode parses (metrics/verification.py names the forms)."""
    from .verify import parse_mode

    for mode in (modes,) if isinstance(modes, str) else modes:
        parse_mode(mode)


def check_references(cfg: ReferencesOptions) -> None:
    if cfg.samples < 1:
        raise ValueError("samples must be >= 1")
    if cfg.negatives < 0:
        raise ValueError("negatives must be >= 0")
    if not 1 <= cfg.negative_distance <= 4:
        raise ValueError("negative_distance must be 1..4")


@dataclass(frozen=True)
class ReferencesConfig(ReferencesOptions, ServerFields):
    data: str = setting(help="Folder written by `recsaver data prepare`.")
    split: str = setting("test", "Which split to explain.", choices=SPLITS)
    model: str = setting(DEFAULT_MODEL, "provider/model writing (and, by default, verifying) explanations.")
    verify: str = setting("exact", f"Which explanations join the pool: {VERIFY_HELP}.")
    leak_patterns: tuple[str, ...] = setting(LEAK_PATTERNS, "Leakage regexes; giving any replaces the defaults "
                                                            "(repeatable).", flag="leak-pattern")

    def __post_init__(self) -> None:
        check_choices(self)
        check_verify(self.verify)
        check_references(self)


@dataclass(frozen=True)
class DistillSampleConfig(EngineFields):
    data: str = setting(help="Folder written by `recsaver data prepare`.")
    split: str = setting("train", "Which split the teacher answers.", choices=SPLITS)
    model: str = setting("llamacpp/qwen2.5-0.5b", "The teacher: provider/model.")
    samples: int = setting(8, "M reasoning paths per example (paper Eq. 3).")
    temperature: float = setting(0.7, "Sampling temperature T (> 0).")
    max_tokens: int = setting(METHOD_DEFAULTS["cot"]["max_tokens"], "Most tokens per answer.")
    # Off by default: distillation cells were recorded without it (their hashes are pinned); the
    # shipped Table 4/5 configs turn it on for small teachers.
    grammar: bool = setting(False, "Constrain the teacher's output format (GBNF / guided decoding).")

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise ValueError("samples must be >= 1")
        if self.temperature <= 0:
            raise ValueError("temperature must be > 0: Eq. 3 samples diverse reasoning paths (T > 0)")
        check_choices(self)

    def predict_config(self) -> PredictConfig:
        """The CoT prediction these samples are: one request builder for teacher and predict."""
        return PredictConfig(
            data=self.data, split=self.split, model=self.model, method="cot", samples=self.samples,
            temperature=self.temperature, max_tokens=self.max_tokens, grammar=self.grammar, rating_probs=True,
            force_rating=True, **self.engine_values())


@dataclass(frozen=True)
class FinetuneConfig:
    train: str = setting(help="SFT folder (or its train.jsonl) from `recsaver distill build`.")
    model: str = setting("smollm2-135m", "Student: built-in name, local HF folder or hub id.")
    lora: int | None = setting(8, "LoRA rank; none (or --full): train every weight.")
    lora_alpha: int | None = setting(None, "LoRA alpha (default 2 x rank).")
    lora_targets: tuple[str, ...] = setting((), "LoRA target module names (repeatable; default: PEFT's choice per "
                                                "architecture, attention q and v).", flag="lora-target")
    epochs: float = setting(1.0, "Passes over the rows.")
    lr: float = setting(1e-4, "Learning rate (the paper's 1e-4).")
    batch: int = setting(1, "Rows per device batch.")
    grad_accum: int = setting(1, "Batches per optimizer step.")
    max_length: int = setting(2048, "Longest row in tokens; longer rows are dropped and counted.")
    dropout: float = setting(0.25, "Dropout (the paper's; LoRA dropout, or the model's own rates with full "
                                   "fine-tuning).")
    seed: int = setting(0, "Seed for initialisation and data order.")
    max_steps: int | None = setting(None, "Stop after N optimizer steps (overrides epochs).")
    resume: bool = setting(False, "Continue from the last checkpoint in the output folder.")
    save_steps: int = setting(50, "Checkpoint every N steps (and at the end).")
    scheduler: str = setting("linear", "Learning-rate schedule (a transformers scheduler name).")
    warmup_steps: int = setting(0, "Warm-up steps of the schedule.")
    merge: bool = setting(True, "With LoRA, also write OUT/merged (adapter merged into the base).")
    num_threads: int | None = setting(None, "torch CPU threads (fewer can be faster on a busy CPU).", flag="threads")
    nproc: int = setting(1, "Data-parallel training processes (DDP through the HF Trainer: gloo on CPU, NCCL on GPU); "
                            "each takes --batch rows a step, so the global batch is batch x grad-accum x nproc.")
    executor: str = setting("local", "Start the --nproc processes here (torchrun), or as Ray Train workers "
                                     "(ray.train.TorchTrainer) on a Ray cluster.", choices=EXECUTORS)
    ray_address: str = setting("auto", "With --executor ray: the cluster to join (auto, HOST:PORT, or local).")

    def __post_init__(self) -> None:
        if self.nproc < 1:
            raise ValueError(f"nproc must be >= 1, got {self.nproc}")
        if self.lora is not None and self.lora < 1:
            raise ValueError(f"lora must be a rank >= 1 (or use --full), got {self.lora}")
        for name in ("batch", "grad_accum", "max_length", "save_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps}")
        if not self.max_steps and self.epochs <= 0:
            raise ValueError(f"epochs must be > 0, got {self.epochs}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
