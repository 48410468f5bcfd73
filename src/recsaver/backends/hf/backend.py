"""`HFBackend`: batched generation and probes (the rating read-out) with a transformers model."""

from __future__ import annotations

import gc
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...prompts.rating import rating_probe
from ..base import Generation, GenerationRequest, OnProbe, OnResult, Probe, ProbeRequest, SamplingParams
from .checkpoints import export_plain, load_pretrained, resolve_model_name, split_adapter
from .prompts import _stop_criteria, candidate_token_ids, cut_at_stop, prompt_token_ids, rating_digit_ids

# A probe's inputs: prompt tokens (the encoder's, for seq2seq), continuation tokens, candidate token ids.
_ProbeInputs = tuple[list[int], list[int], list[int]]

log = logging.getLogger(__name__)


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

        config, self.tokenizer, model, self.model_id = load_pretrained(
            name_or_path, gguf_file=gguf_file, adapter=adapter, device=self.device, dtype=dtype)
        self.is_seq2seq = bool(getattr(config, "is_encoder_decoder", False))
        self.model = model.to(self.device).eval()

        limit = getattr(config, "max_position_embeddings", None)
        self.context_length = min(int(context_length), int(limit)) if (limit and not self.is_seq2seq) else int(
            context_length)
        tok = self.tokenizer
        if not self.is_seq2seq:
            tok.padding_side = "left"
        self.pad_id = next(i for i in (tok.pad_token_id, tok.eos_token_id, self._gen_config().pad_token_id, 0)
                            if i is not None)
        self.eos_ids = self._eos_ids()
        self.decoder_start_id = next(i for i in (getattr(self._gen_config(), "decoder_start_token_id", None),
                                                  getattr(config, "decoder_start_token_id", None), self.pad_id)
                                      if i is not None)
        self.has_chat_template = bool(getattr(tok, "chat_template", None))
        self._digit_ids = rating_digit_ids(lambda s: tok.encode(s, add_special_tokens=False))
        self._warned_grammar = False

    # ---- setup helpers ------------------------------------------------------
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
    def prompt_tokens(self, request: GenerationRequest | ProbeRequest) -> list[int]:
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
        filled = [r for r in results if r is not None]
        assert len(filled) == len(results), "a request got no Generation"
        return filled

    def _batches(self, requests: Sequence[GenerationRequest], prepared: dict[int, list[int]]) -> list[list[int]]:
        """Greedy requests with equal params, `batch_size` at a time (longest prompts first);
        sampled requests one at a time (see the package doc)."""
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
            torch.manual_seed(requests[0].sample_seed())
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
                    rated = self._probe_batch([self._probe_inputs(rating_probe(req, text), prompt)])[0]
                    if rated.error is not None:
                        raise RuntimeError(rated.error)
                    probs, mass = rated.probs, rated.mass
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

    # ---- probes (the rating read-out) -------------------------------------------
    def probe(self, requests: Sequence[ProbeRequest], on_result: OnProbe | None = None) -> list[Probe]:
        """One forward pass per `batch_size` probes (longest first, right padding: the causal model reads
        each row at its own last token, so padding changes nothing it attends to)."""
        results: list[Probe | None] = [None] * len(requests)

        def done(i: int, p: Probe) -> None:
            results[i] = p
            if on_result:
                on_result(i, p)

        prepared: dict[int, _ProbeInputs] = {}
        for i, r in enumerate(requests):
            try:
                prepared[i] = self._probe_inputs(r)
            except Exception as e:  # recorded, not raised
                done(i, Probe(probs=None, error=f"{type(e).__name__}: {e}"))
        order = sorted(prepared, key=lambda i: (-(len(prepared[i][0]) + len(prepared[i][1])), i))
        for k in range(0, len(order), self.batch_size):
            batch = order[k:k + self.batch_size]
            try:
                outs = self._probe_batch([prepared[i] for i in batch])
            except Exception as e:
                if len(batch) == 1:
                    outs = [Probe(probs=None, error=f"{type(e).__name__}: {e}")]
                else:  # one by one, so a failure is charged to the request that caused it
                    outs = [self._probe_safe(prepared[i]) for i in batch]
            for i, p in zip(batch, outs):
                done(i, p)
        return [p if p is not None else Probe(probs=None, error="not run") for p in results]

    def _probe_inputs(self, request: ProbeRequest, prompt_tokens: list[int] | None = None) -> _ProbeInputs:
        """Prompt tokens, continuation tokens and candidate ids; raises when a candidate is not one token.

        No context check: the rating read-out never had one (a model with rotary positions reads a few
        tokens past its nominal length), and the forward pass fails on its own where it cannot."""
        def encode(text: str) -> list[int]:
            return list(self.tokenizer.encode(text, add_special_tokens=False))

        prompt = self.prompt_tokens(request) if prompt_tokens is None else prompt_tokens
        tail = encode(request.continuation)
        try:
            ids = candidate_token_ids(encode, request.continuation, request.candidates, base=tail)
        except ValueError as e:
            raise ValueError(f"{self.model_id}: {e}") from None
        return prompt, tail, ids

    def _probe_safe(self, inputs: _ProbeInputs) -> Probe:
        try:
            return self._probe_batch([inputs])[0]
        except Exception as e:
            return Probe(probs=None, error=f"{type(e).__name__}: {e}")

    def _probe_batch(self, items: Sequence[_ProbeInputs]) -> list[Probe]:
        """One forward pass over prompt + continuation of each item (right padded); the candidates'
        share of each row's next-token softmax (float64) at its last token."""
        torch = self._torch
        started = time.perf_counter()

        def padded(rows: list[list[int]]) -> tuple[Any, Any]:
            width = max(len(r) for r in rows)
            ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for row, t in enumerate(rows):
                ids[row, : len(t)] = torch.tensor(t, dtype=torch.long)
                mask[row, : len(t)] = 1
            return ids.to(self.device), mask.to(self.device)

        with torch.inference_mode():
            if self.is_seq2seq:
                enc, enc_mask = padded([prompt for prompt, _, _ in items])
                decoder_rows = [[self.decoder_start_id] + tail for _, tail, _ in items]
                dec, dec_mask = padded(decoder_rows)
                logits = self.model(input_ids=enc, attention_mask=enc_mask, decoder_input_ids=dec,
                                    decoder_attention_mask=dec_mask if len(items) > 1 else None).logits
                lengths = [len(r) for r in decoder_rows]
            else:
                rows = [prompt + tail for prompt, tail, _ in items]
                full, mask = padded(rows)
                logits = self.model(input_ids=full, attention_mask=mask).logits
                lengths = [len(r) for r in rows]
        elapsed = (time.perf_counter() - started) / len(items)  # a batch's time is shared
        out = []
        for row, ((prompt, tail, ids), n) in enumerate(zip(items, lengths)):
            p_all = torch.softmax(logits[row, n - 1].double(), dim=-1)
            chosen = p_all[ids].cpu()
            mass = float(chosen.sum())
            tokens = len(prompt) + len(tail)
            if not mass > 0 or math.isnan(mass):
                out.append(Probe(probs=None, error=f"{self.model_id}: no probability mass on the candidates",
                                 prompt_tokens=tokens, latency_s=elapsed))
                continue
            out.append(Probe(probs=tuple(float(x) for x in chosen / mass), mass=mass, prompt_tokens=tokens,
                             latency_s=elapsed))
        return out

    def rating_distribution(self, prompt_tokens: list[int], completion: str) -> tuple[tuple[float, ...], float]:
        """P(1..5) after `prompt_tokens` and `completion` (the probe `prompts.rating.rating_probe`)."""
        request = rating_probe(GenerationRequest(messages=()), completion)
        p = self._probe_batch([self._probe_inputs(request, prompt_tokens)])[0]
        if p.probs is None or p.mass is None:
            raise RuntimeError(p.error or "no probability mass on the candidates")
        return p.probs, p.mass

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
