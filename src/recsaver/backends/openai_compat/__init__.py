"""Any OpenAI-compatible HTTP server: vLLM serve, llama.cpp server, llama-cpp-python server, Ollama, hosted APIs.

Why plain `httpx` and not the `openai` package: the SDK has its own retry loop,
its own timeouts and its own idea of which errors are worth retrying, and it
hides a truncated or invalid body behind exceptions of its own. A long rating
run needs one retry policy that we can read and test end to end (exponential
backoff with full jitter, `Retry-After`, fail-over between servers, a failed
request recorded and never raised), so the HTTP calls are made here, with a
synchronous `httpx.Client` shared by a bounded `ThreadPoolExecutor`.

Base URLs are given the OpenAI way, ending in `/v1` (``http://host:8000/v1``);
a bare ``http://host:port`` gets ``/v1`` appended. Chat requests go to
``{base}/chat/completions``; a request with `prompt_text` and no messages goes
to ``{base}/completions``.

What is retried (up to `max_retries` times after the first try, exponential
backoff with full jitter, capped by `backoff_max`): connection errors,
timeouts, HTTP 408, 429 and 5xx (429/503 wait `Retry-After`, seconds or an
HTTP date, capped by `backoff_max`), and a truncated or invalid JSON body.
Other 4xx fail at once. A request that still fails is returned as
``Generation(text=None, error="...")`` naming the status and the last error.

Several base URLs: requests are spread over them (``round-robin`` or
``least-busy`` = fewest requests in flight). A server that refuses the
connection (or cannot be reached in time) is marked down for `down_cooldown`
seconds and the request moves at once to another server, without spending one
of its retries, so the others carry on and nothing is lost.

Constrained decoding (`request.grammar`), by `constraint_style`:

- ``"gbnf"`` (default): ``body["grammar"]`` = the GBNF text (llama.cpp server,
  llama-cpp-python server).
- ``"vllm-regex"``: ``body["guided_regex"]`` = the request's `grammar` text,
  read as a regular expression (vLLM's guided decoding; newer vLLM also takes
  ``structured_outputs``). `GenerationRequest` has no separate regex field yet,
  so the regex is carried in `grammar` for now.
- ``"json-schema"``: the `grammar` text is a JSON schema, sent the standard
  OpenAI way as ``response_format={"type": "json_schema", ...}``.
- ``None``: the server takes no constraint; it is not sent (warned once) and
  the output is unconstrained.

`rating_probs`: an OpenAI-compatible server exposes P(1..5) only through the
``top_logprobs`` of the generated tokens, so such a request asks for
``logprobs: true, top_logprobs: 20`` (``logprobs: 20`` on /completions) and
reads the token that follows the *last* rating header in the
answer: the top-20 entries whose stripped text is one of "1".."5" are
exponentiated, their sum is `digit_mass`, and normalized they are
`rating_probs`. Unlike the in-process llama.cpp backend the header cannot be
appended after the fact, so when the answer has no header (or the digit's
alternatives are not among the top 20) `rating_probs` stays None. A server
that refuses logprobs answers 400, and the request fails loudly.

`probe` (`ProbeRequest`): one greedy token with ``max_tokens: 1`` and the top 20 logprobs
after prompt + continuation; the candidates' exponentiated logprobs (matched as
`rating_from_logprobs` matches digits) are the mass and, normalized, the probs; a candidate
outside the top 20 counts 0. A completion-style request (`prompt_text`, no messages) sends
prompt_text + continuation to /completions, which every server takes. A chat request must have
the server continue an assistant message holding the continuation, which the OpenAI API cannot
ask in a standard way: `chat_probe="continue_final_message"` sends vLLM's
``continue_final_message``/``add_generation_prompt`` flags, ``"prefill"`` relies on a server that
continues a trailing assistant message (llama.cpp server); with the default None a chat probe is
a `Probe` error saying so (llama-cpp-python's server would silently start a new assistant turn).
A server that returns no logprobs gives a `Probe` error too.

`batch=True` (``--batch``): `generate` goes through the OpenAI Batch API (files and batches
endpoints), resumable by batch id, failed lines retried in follow-up batches; `batch` says how,
`batch_files` what is written (the batch JSONL, which vLLM's ``run-batch`` also reads, and the
durable batch records). Probes keep using normal calls.

The package: `backend` (`OpenAIBackend`: construction, the `generate` fan-out), `servers`
(the server list: probe, choice, down marks), `bodies` (request bodies, constraints),
`retries` (one HTTP attempt and the retry loop), `batch` and `batch_files` (the Batch API), `tokens`
(`count_tokens`), `logprobs` (`rating_probs` and probes from top logprobs), `state` (the attributes the mixins share).
"""

from __future__ import annotations

from .backend import BALANCES, CONSTRAINT_STYLES, OpenAIBackend
from .batch_files import batch_line, write_batch_file
from .logprobs import DIGITS, RATING_HEADER, TOP_LOGPROBS, rating_from_logprobs
from .retries import RETRYABLE_STATUS, parse_retry_after
from .tokens import CHAT_TEMPLATE_TOKENS_PER_MESSAGE

__all__ = ["BALANCES", "CHAT_TEMPLATE_TOKENS_PER_MESSAGE", "CONSTRAINT_STYLES", "DIGITS", "OpenAIBackend",
           "RATING_HEADER", "RETRYABLE_STATUS", "TOP_LOGPROBS", "batch_line", "parse_retry_after",
           "rating_from_logprobs", "write_batch_file"]
