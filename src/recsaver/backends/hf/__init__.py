"""transformers (PyTorch) engine: local checkpoints, hub ids, GGUFs dequantized by transformers, PEFT adapters.

Causal LMs (`AutoModelForCausalLM`) and encoder-decoder LMs (`AutoModelForSeq2SeqLM`,
chosen from `config.is_encoder_decoder`), on CPU or GPU. torch and transformers are
imported only when an `HFBackend` is built, so this package is cheap to import (the vLLM
backend reuses its helpers).

Behaviour to know:

- Prompts: chat requests are rendered with the tokenizer's chat template
  (`add_generation_prompt=True`); `request.prompt_text`, or a tokenizer without a chat
  template, gives a plain-text prompt (messages joined by blank lines, as llama.cpp does).
- Batching: requests with equal sampling params are run together, `batch_size` at a time
  (left padding for causal LMs). Greedy requests (temperature 0) are batched; *sampled
  requests are run one at a time*, each after `torch.manual_seed(request.sample_seed())`, so a
  sample does not depend on what else was in its batch (transformers' `generate` takes no per-row
  generator).
- Stop strings end a sequence early and the text is cut at the first one.
- `probe`: one forward pass over prompt + continuation per `batch_size` probes (right
  padding; each row read at its own last token); the candidates' share of the next-token
  softmax, candidate ids resolved with the tokenizer as they follow the continuation. For
  seq2seq models the continuation is the decoder input.
- `rating_probs`: the probe `prompts.rating.rating_probe` (prompt + answer cut at its last
  rating header, header appended when absent; candidates "1".."5"), one forward pass per answer.
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

from .backend import HFBackend
from .checkpoints import (
                          WEIGHT_SUFFIXES,
                          export_plain,
                          hf_checkpoint,
                          hf_home,
                          resolve_model_name,
                          split_adapter,
                          weights_identity,
)
from .prompts import (
                          DIGITS,
                          RATING_HEADER,
                          candidate_token_ids,
                          cut_at_stop,
                          join_messages,
                          prompt_token_ids,
                          rating_continuation,
                          rating_digit_ids,
)

__all__ = ["DIGITS", "HFBackend", "RATING_HEADER", "WEIGHT_SUFFIXES", "candidate_token_ids", "cut_at_stop",
           "export_plain", "hf_checkpoint", "hf_home", "join_messages", "prompt_token_ids", "rating_continuation",
           "rating_digit_ids", "resolve_model_name", "split_adapter", "weights_identity"]
