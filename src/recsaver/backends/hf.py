"""transformers (PyTorch) engine: local checkpoints, hub ids, GGUFs dequantized by transformers, PEFT adapters.

Causal LMs (`AutoModelForCausalLM`) and encoder-decoder LMs (`AutoModelForSeq2SeqLM`,
chosen from `config.is_encoder_decoder`), on CPU or GPU. torch and transformers are
imported only when an `HFBackend` is built, so this module is cheap to import (the vLLM
backend reuses its helpers).

Behaviour to know:

- Prompts: chat requests are rendered with the tokenizer's chat template
  (`add_generation_prompt=True`); `request.prompt_text`, or a tokenizer without a chat
  template, gives a plain-text prompt (messages joined by blank lines, as llama.cpp does).
- Batching: requests with equal sampling params are run together, `batch_size` at a time
  (left padding for causal LMs). Greedy requests (temperature 0) are batched; *sampled
  requests are run one at a time*, each after `torch.manual_seed(seed * 1_000_003 +
  sample_index)`, so a sample does not depend on what else was in its batch (transformers'
  `generate` takes no per-row generator).
- Stop strings end a sequence early and the text is cut at the first one.
- `rating_probs`: one extra forward pass over prompt + answer cut at its last rating
  header (header appended when absent) + ``"### Rating ###\\n"``; P(1..5) from the
  next-token distribution, digit ids resolved with the tokenizer. For seq2seq models the
  answer head + header is the decoder input.
- Grammars: transformers has no GBNF support, so `request.grammar` is ignored here (one
  warning per backend); the output is unconstrained and parsed leniently downstream.
- `model_id`: ``hf/<name>[:<gguf file>]@sha256:<16 hex>`` for a local directory (hash of the
  sorted (file name, size, mtime) of its weight files), ``@rev:<commit>`` for a hub id,
  plus ``+adapter:...`` the same way for a PEFT adapter.
- Model names: a local directory, a hub id, or a built-in GGUF name (``smollm2-135m``,
  ``qwen2.5-0.5b``, ...): a built-in is dequantized once and kept as a plain checkpoint
  under ``$RECSAVER_HOME/hf/<sha16>`` (`hf_checkpoint`). A directory holding only a PEFT
  adapter (``adapter_config.json``, as `recsaver finetune --lora` writes) loads its base
  model with the adapter on top, so ``hf/<finetune output>`` runs the student.
- `num_threads` (optional) sets torch's intra-op threads for the whole process. On a
  CPU shared with other busy processes, fewer threads than cores can be many times
  faster: OpenMP workers spin-wait for each other (measured here at load 6 on 2 cores:
  12 greedy tokens took 21 s with 2 threads and 2.3 s with 1).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import gc
import hashlib
import json
import logging
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from .base import Generation, GenerationRequest, OnResult, SamplingParams

log = logging.getLogger(__name__)

RATING_HEADER = "### Rating ###\n"
DIGITS = ("1", "2", "3", "4", "5")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".ckpt", ".h5", ".msgpack")
_DTYPES = {"float32": "float32", "fp32": "float32", "float": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
           "float16": "float16", "fp16": "float16", "half": "float16"}


# ---- helpers shared with the vLLM backend (no torch needed) -----------------------------
def rating_continuation(completion: str) -> str:
    """The text appended to the prompt before reading P(1..5): the answer cut at its last
    rating header (or the whole answer and a blank line when it has none) + the header."""
    cut = completion.rfind(RATING_HEADER.strip())
    head = completion[:cut] if cut >= 0 else completion.rstrip() + "\n\n"
    if cut < 0 and not completion.strip():
        head = ""
    return head + RATING_HEADER


def rating_digit_ids(encode: Callable[[str], list[int]]) -> list[int]:
    """Token ids of "1".."5" as they follow the rating header, resolved with the tokenizer.

    `encode(text)` tokenizes without special tokens. The id is the one token that the digit
    adds after ``"### Rating ###\\n"``; where the tokenizer merges across that boundary the
    digit tokenized alone is used, and it must be a single token.
    """
    base = encode(RATING_HEADER)
    ids = []
    for d in DIGITS:
        with_digit = encode(RATING_HEADER + d)
        if len(with_digit) == len(base) + 1 and with_digit[: len(base)] == base:
            ids.append(with_digit[-1])
            continue
        alone = encode(d)
        if len(alone) != 1:
            raise RuntimeError(f"rating digit {d!r} is {len(alone)} tokens, expected 1")
        ids.append(alone[0])
    return ids


def weights_identity(name_or_path: str, gguf_file: str | None = None, commit: str | None = None) -> str:
    """A short, stable name for the weights: ``sha256:<16 hex>`` over the sorted (file name,
    size, mtime) of a local directory's top-level weight files (only `gguf_file` when given), the hub
    commit (``rev:<12 hex>``) for a hub id, or ``rev:unknown`` when neither can be found."""
    path = Path(name_or_path).expanduser()
    if path.is_dir() or path.is_file():
        if path.is_file():
            files = [path]
        elif gguf_file:
            files = [path / gguf_file]
        else:
            # top level only, as from_pretrained reads it (a trainer's checkpoint-*/ folders are not these weights)
            files = [p for p in path.iterdir() if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES)]
        h = hashlib.sha256()
        for f in sorted(files):
            st = f.stat()
            h.update(f"{f.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return f"sha256:{h.hexdigest()[:16]}"
    if not commit:
        commit = _hub_commit(name_or_path)
    return f"rev:{commit[:12]}" if commit else "rev:unknown"


def _hub_commit(repo_id: str) -> str | None:
    """The commit of a hub repository's snapshot in the local cache, without network."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=True)).name
    except Exception:
        return None


def join_messages(request: GenerationRequest) -> str:
    """Plain-text prompt: `prompt_text`, or the messages joined by blank lines (as llama.cpp)."""
    if request.prompt_text is not None:
        return request.prompt_text
    return "\n\n".join(c for _, c in request.messages)


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """`text` up to the first occurrence of any stop string, and whether one was found."""
    first = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=-1)
    return (text[:first], True) if first >= 0 else (text, False)


def prompt_token_ids(tokenizer: Any, request: GenerationRequest) -> list[int]:
    """The exact prompt tokens the model (the encoder, for seq2seq) sees: the chat template with
    a generation prompt, or the plain text (`join_messages`) where there is no template.

    Shared with fine-tuning, so training rows and inference prompts are tokenized alike.
    """
    if request.prompt_text is not None or not getattr(tokenizer, "chat_template", None):
        return list(tokenizer(join_messages(request), add_special_tokens=True)["input_ids"])
    rendered = tokenizer.apply_chat_template(request.message_dicts(), add_generation_prompt=True, tokenize=False)
    return list(tokenizer(rendered, add_special_tokens=False)["input_ids"])


@contextlib.contextmanager
def _fast_gguf_loading() -> Iterator[None]:
    """Speed up transformers' GGUF loading for the duration of one load.

    transformers (5.x) parses the GGUF once for the config, once for the tokenizer and once
    for the weights (about 7 s each for SmolLM2 here), and builds gguf's `TensorNameMap`
    once per module (about 12 s). Within this block `gguf.GGUFReader` returns one reader per
    path and `gguf.get_tensor_name_map` is memoized; both are read-only uses. The originals
    are restored afterwards; if gguf's layout differs, nothing is patched.
    """
    try:
        import gguf
    except Exception:
        yield
        return
    orig_reader = getattr(gguf, "GGUFReader", None)
    orig_map = getattr(gguf, "get_tensor_name_map", None)
    if orig_reader is None or orig_map is None:
        yield
        return
    readers: dict[tuple[str, str], Any] = {}

    def cached_reader(path: Any, mode: str = "r") -> Any:
        key = (str(Path(path).resolve()), mode)
        if key not in readers:
            readers[key] = orig_reader(path, mode)
        return readers[key]

    gguf.GGUFReader = cached_reader
    gguf.get_tensor_name_map = functools.lru_cache(maxsize=None)(orig_map)
    try:
        yield
    finally:
        gguf.GGUFReader = orig_reader
        gguf.get_tensor_name_map = orig_map
        readers.clear()


def hf_home() -> Path:
    """Folder of plain checkpoints converted from GGUFs: ``$RECSAVER_HOME/hf``."""
    return Path(os.environ.get("RECSAVER_HOME") or "~/.cache/recsaver").expanduser() / "hf"


def hf_checkpoint(gguf_path: Path) -> Path:
    """A plain safetensors checkpoint (config, weights, tokenizer) of a GGUF, converted once.

    Why: transformers dequantizes a GGUF on every load (about 30 s for SmolLM2 here) and a
    GGUF-loaded model cannot be saved, fine-tuned with PEFT and saved again. The copy lives
    under ``hf_home()/<first 16 hex of the file's sha256>`` and appears by one rename, so a
    folder at that path is always complete.
    """
    from ..models import model_fingerprint

    path = Path(gguf_path).resolve()
    digest = model_fingerprint(path)
    out = hf_home() / digest[:16]
    if out.is_dir():
        return out
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    log.info("converting %s to a plain transformers checkpoint at %s (once)", path, out)
    backend = HFBackend(str(path.parent), gguf_file=path.name, device="cpu")
    try:
        backend.save_pretrained(tmp)
    finally:
        backend.close()
    (tmp / "recsaver_source.json").write_text(json.dumps({"gguf": str(path), "sha256": digest}) + "\n")
    try:
        os.replace(tmp, out)
    except OSError:  # another process finished the same conversion first
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def resolve_model_name(name: str) -> str:
    """A built-in GGUF name (``smollm2-135m``, optionally ``llamacpp/``-prefixed) -> the path of
    its converted checkpoint (`hf_checkpoint`); a local path or hub id is returned as is."""
    from ..models import BUILTIN_MODELS, require_model

    bare = name[len("llamacpp/"):] if name.startswith("llamacpp/") else name
    if bare in BUILTIN_MODELS and not Path(name).expanduser().exists():
        return str(hf_checkpoint(require_model(bare)))
    return name


def split_adapter(name_or_path: str) -> tuple[str, str | None]:
    """(base model, adapter dir) for a directory that holds only a PEFT adapter, else (name, None).

    The base is the adapter's ``base_model_name_or_path``; where that path is gone (the
    adapter was moved to another machine), the ``model`` that `recsaver finetune` recorded in
    ``finetune_config.json`` beside it is resolved again.
    """
    folder = Path(name_or_path).expanduser()
    config_file = folder / "adapter_config.json"
    if not config_file.is_file() or (folder / "config.json").is_file():
        return name_or_path, None
    try:
        base = json.loads(config_file.read_text()).get("base_model_name_or_path")
    except ValueError as e:
        raise ValueError(f"{config_file}: not valid JSON ({e})") from None
    recorded = folder / "finetune_config.json"
    if (not base or not Path(base).exists()) and recorded.is_file():
        base = json.loads(recorded.read_text()).get("model") or base
    if not base:
        raise ValueError(f"{config_file}: field base_model_name_or_path is empty; cannot find the base model")
    return resolve_model_name(base), str(folder)


def export_plain(model: Any, tokenizer: Any, out_dir: str | Path) -> Path:
    """Save `model` (a PEFT model is merged into a copy first) and `tokenizer` as a plain checkpoint.

    A GGUF-loaded model cannot be saved directly (transformers refuses); it is rebuilt from
    its config without the quantization config and its dequantized weights copied in.
    """
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    out = Path(out_dir)
    if hasattr(model, "merge_and_unload"):  # merge into a copy: the caller keeps its adapter
        model = copy.deepcopy(model).merge_and_unload()
    if getattr(model.config, "quantization_config", None) is not None:
        cfg = copy.deepcopy(model.config)
        del cfg.quantization_config
        auto = AutoModelForSeq2SeqLM if getattr(cfg, "is_encoder_decoder", False) else AutoModelForCausalLM
        rebuilt = auto.from_config(cfg, dtype=next(model.parameters()).dtype)
        rebuilt.load_state_dict(model.state_dict())
        rebuilt.generation_config = copy.deepcopy(model.generation_config)
        model = rebuilt
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


class HFBackend:
    def __init__(
        self,
        name_or_path: str,
        *,
        context_length: int = 4096,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 4,
        gguf_file: str | None = None,
        adapter: str | None = None,
        num_threads: int | None = None,
    ):
        import torch  # heavy: imported only when this backend is chosen
        from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

        self.name = name_or_path
        if not gguf_file:
            name_or_path = resolve_model_name(name_or_path)
            if adapter is None:
                name_or_path, adapter = split_adapter(name_or_path)
        self.batch_size = max(1, int(batch_size))
        self.gguf_file = gguf_file
        self.adapter = adapter
        self.device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device)
        self._torch = torch
        if num_threads:  # process-wide: torch has one intra-op pool
            torch.set_num_threads(int(num_threads))

        kwargs: dict[str, Any] = {"gguf_file": gguf_file} if gguf_file else {}
        with _fast_gguf_loading():
            config = AutoConfig.from_pretrained(name_or_path, **kwargs)
            self.is_seq2seq = bool(getattr(config, "is_encoder_decoder", False))
            self.tokenizer = AutoTokenizer.from_pretrained(name_or_path, **kwargs)
            auto = AutoModelForSeq2SeqLM if self.is_seq2seq else AutoModelForCausalLM
            if self.device.type == "cuda":  # load straight onto the GPU
                kwargs["device_map"] = str(self.device)
            model = auto.from_pretrained(name_or_path, config=config, dtype=self._torch_dtype(dtype), **kwargs)
        commit = getattr(config, "_commit_hash", None)
        self.model_id = f"hf/{name_or_path}" + (f":{gguf_file}" if gguf_file else "") + "@" + weights_identity(
            name_or_path, gguf_file, commit)
        if adapter:
            from peft import PeftModel  # optional: only for adapters

            model = PeftModel.from_pretrained(model, adapter)
            self.model_id += "+adapter:" + weights_identity(adapter)
        self.model = model.to(self.device).eval()

        limit = getattr(config, "max_position_embeddings", None)
        self.context_length = min(int(context_length), int(limit)) if (limit and not self.is_seq2seq) else int(
            context_length)
        tok = self.tokenizer
        if not self.is_seq2seq:
            tok.padding_side = "left"
        self.pad_id = next((i for i in (tok.pad_token_id, tok.eos_token_id, self._gen_config().pad_token_id, 0)
                            if i is not None))
        self.eos_ids = self._eos_ids()
        self.decoder_start_id = next((i for i in (getattr(self._gen_config(), "decoder_start_token_id", None),
                                                  getattr(config, "decoder_start_token_id", None), self.pad_id)
                                      if i is not None))
        self.has_chat_template = bool(getattr(tok, "chat_template", None))
        self._digit_ids = rating_digit_ids(lambda s: tok.encode(s, add_special_tokens=False))
        self._warned_grammar = False

    # ---- setup helpers ------------------------------------------------------
    def _torch_dtype(self, dtype: str) -> Any:
        if dtype == "auto":
            # on CPU: fp32 (bf16/fp16 are slow or unsupported there); on GPU: the checkpoint's dtype
            return self._torch.float32 if self.device.type == "cpu" else "auto"
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be auto or one of {sorted(_DTYPES)}, got {dtype!r}")
        return getattr(self._torch, _DTYPES[dtype])

    def _gen_config(self) -> Any:
        return getattr(self.model, "generation_config", None) or self.model.config

    def _eos_ids(self) -> list[int]:
        ids: list[int] = []
        for source in (self._gen_config().eos_token_id, self.tokenizer.eos_token_id):
            for i in source if isinstance(source, (list, tuple)) else [source]:
                if i is not None and int(i) not in ids:
                    ids.append(int(i))
        return ids

    # ---- prompt rendering -------------------------------------------------
    def prompt_tokens(self, request: GenerationRequest) -> list[int]:
        """The exact tokens the model (the encoder, for seq2seq) sees."""
        return prompt_token_ids(self.tokenizer, request)

    def count_tokens(self, request: GenerationRequest) -> int:
        return len(self.prompt_tokens(request))

    # ---- generation -------------------------------------------------------
    def generate(self, requests: Sequence[GenerationRequest], on_result: OnResult | None = None) -> list[Generation]:
        results: list[Generation | None] = [None] * len(requests)

        def done(i: int, g: Generation) -> None:
            results[i] = g
            if on_result:
                on_result(i, g)

        prepared: dict[int, list[int]] = {}
        for i, r in enumerate(requests):
            try:
                tokens = self.prompt_tokens(r)
                if len(tokens) + r.params.max_tokens > self.context_length:
                    done(i, Generation(text=None, prompt_tokens=len(tokens), error=(
                        f"prompt of {len(tokens)} tokens + max_tokens {r.params.max_tokens} exceeds the context "
                        f"of {self.context_length}")))
                    continue
                prepared[i] = tokens
            except Exception as e:  # recorded, not raised: one bad call must not end a run
                done(i, Generation(text=None, error=f"{type(e).__name__}: {e}"))
        if any(requests[i].grammar for i in prepared) and not self._warned_grammar:
            self._warned_grammar = True
            log.warning("hf backend: transformers has no GBNF support; request grammars are ignored "
                        "(output is unconstrained and parsed leniently)")

        for batch in self._batches(requests, prepared):
            try:
                outs = self._run_batch([requests[i] for i in batch], [prepared[i] for i in batch])
            except Exception as e:
                if len(batch) == 1:
                    done(batch[0], Generation(text=None, prompt_tokens=len(prepared[batch[0]]),
                                              error=f"{type(e).__name__}: {e}"))
                    continue
                outs = []  # retry one by one, so a failure is charged to the request that caused it
                for i in batch:
                    try:
                        outs.append(self._run_batch([requests[i]], [prepared[i]])[0])
                    except Exception as e1:
                        outs.append(Generation(text=None, prompt_tokens=len(prepared[i]),
                                               error=f"{type(e1).__name__}: {e1}"))
            for i, g in zip(batch, outs):
                done(i, g)
        return results  # type: ignore[return-value]

    def _batches(self, requests: Sequence[GenerationRequest], prepared: dict[int, list[int]]) -> list[list[int]]:
        """Greedy requests with equal params, `batch_size` at a time (longest prompts first);
        sampled requests one at a time (see the module doc)."""
        groups: dict[SamplingParams, list[int]] = {}
        for i in prepared:
            groups.setdefault(requests[i].params, []).append(i)
        batches: list[list[int]] = []
        for params, idx in groups.items():
            if params.temperature > 0:
                batches.extend([i] for i in idx)
                continue
            idx = sorted(idx, key=lambda i: (-len(prepared[i]), i))
            batches.extend(idx[k:k + self.batch_size] for k in range(0, len(idx), self.batch_size))
        return batches

    def _run_batch(self, requests: list[GenerationRequest], prompts: list[list[int]]) -> list[Generation]:
        torch = self._torch
        started = time.perf_counter()
        p = requests[0].params
        width = max(len(t) for t in prompts)
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, t in enumerate(prompts):
            if self.is_seq2seq:  # encoder: right padding
                ids[row, : len(t)] = torch.tensor(t)
                mask[row, : len(t)] = 1
            else:  # decoder-only: left padding, so every row continues at the last column
                ids[row, width - len(t):] = torch.tensor(t)
                mask[row, width - len(t):] = 1
        gen_kwargs = self._generation_kwargs(p)
        if p.stop:
            gen_kwargs["stopping_criteria"] = _stop_criteria(self.tokenizer, p.stop, 1 if self.is_seq2seq else width)
        if p.temperature > 0:
            assert len(requests) == 1, "sampled requests run one at a time"
            torch.manual_seed((p.seed * 1_000_003 + requests[0].sample_index) % (2**63 - 1))
        with torch.inference_mode():
            out = self.model.generate(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                                      **gen_kwargs)
        start = 1 if self.is_seq2seq else width  # seq2seq output starts with the decoder start token
        new_tokens = out[:, start:].tolist()
        elapsed = time.perf_counter() - started
        results = []
        for req, prompt, row in zip(requests, prompts, new_tokens):
            n = next((k for k, t in enumerate(row) if t in self.eos_ids), None)
            tokens = row if n is None else row[:n]
            text, stopped = cut_at_stop(self.tokenizer.decode(tokens, skip_special_tokens=True), p.stop)
            finish = "stop" if (stopped or n is not None) else "length"
            t0 = time.perf_counter()
            probs, mass = None, None
            if req.rating_probs:
                try:
                    probs, mass = self.rating_distribution(prompt, text)
                except Exception as e:  # keep the answer; only its read-out is missing
                    log.warning("hf backend: rating read-out failed: %s: %s", type(e).__name__, e)
            results.append(Generation(
                text=text, prompt_tokens=len(prompt), completion_tokens=len(tokens),
                latency_s=elapsed / len(requests) + (time.perf_counter() - t0),  # a batch's time is shared
                finish_reason=finish, rating_probs=probs, digit_mass=mass))
        return results

    def _generation_kwargs(self, p: SamplingParams) -> dict[str, Any]:
        from transformers import GenerationConfig

        base = self._gen_config()
        cfg = GenerationConfig(
            max_new_tokens=p.max_tokens, min_new_tokens=0, num_beams=1,
            do_sample=p.temperature > 0,
            temperature=p.temperature if p.temperature > 0 else None,
            top_p=p.top_p if p.temperature > 0 else None,
            top_k=0 if p.temperature > 0 else None,  # temperature + top_p only, as the OpenAI-style params say
            eos_token_id=self.eos_ids or None, pad_token_id=self.pad_id,
            bos_token_id=getattr(base, "bos_token_id", None),
            decoder_start_token_id=self.decoder_start_id if self.is_seq2seq else None,
        )
        return {"generation_config": cfg}

    # ---- rating read-out ----------------------------------------------------
    def rating_distribution(self, prompt_tokens: list[int], completion: str) -> tuple[tuple[float, ...], float]:
        """P(1..5): evaluate prompt + answer up to and including the rating header, read the next-token logits."""
        torch = self._torch
        tail = self.tokenizer.encode(rating_continuation(completion), add_special_tokens=False)
        with torch.inference_mode():
            if self.is_seq2seq:
                enc = torch.tensor([prompt_tokens], device=self.device)
                dec = torch.tensor([[self.decoder_start_id] + tail], device=self.device)
                logits = self.model(input_ids=enc, attention_mask=torch.ones_like(enc), decoder_input_ids=dec).logits
            else:
                full = torch.tensor([prompt_tokens + tail], device=self.device)
                logits = self.model(input_ids=full, attention_mask=torch.ones_like(full)).logits
        p_all = torch.softmax(logits[0, -1].double(), dim=-1)
        digits = p_all[self._digit_ids].cpu()
        mass = float(digits.sum())
        if not mass > 0 or math.isnan(mass):
            raise RuntimeError("no probability mass on the rating digits")
        return tuple(float(x) for x in digits / mass), mass

    # ---- export / close ---------------------------------------------------
    def save_pretrained(self, out_dir: str | Path) -> Path:
        """Write the model (adapter merged in) and tokenizer as a plain transformers checkpoint.

        Load the result with `HFBackend(out_dir)` to skip the slow GGUF dequantization next time.
        """
        return export_plain(self.model, self.tokenizer, out_dir)

    def close(self) -> None:
        self.model = None
        gc.collect()
        if self.device.type == "cuda":
            self._torch.cuda.empty_cache()


def _stop_criteria(tokenizer: Any, stops: Sequence[str], start: int) -> Any:
    """A StoppingCriteria that ends each row once its generated text holds a stop string.

    Only a window of the last tokens is decoded per step (a stop string of k characters
    spans at most k tokens), so the check costs little.
    """
    from transformers import StoppingCriteria, StoppingCriteriaList

    import torch

    stops = [s for s in stops if s]
    window = max(len(s) for s in stops) + 4

    class _Stop(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            flags = []
            for row in input_ids.tolist():
                gen = row[start:]
                text = tokenizer.decode(gen[-window:], skip_special_tokens=True)
                flags.append(any(s in text for s in stops))
            return torch.tensor(flags, dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([_Stop()])
