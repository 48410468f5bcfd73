"""`recsaver finetune` on real Beauty rows: tiny random-weight students, real SmolLM2 tokenizer.

The SmolLM2 tokenizer comes from the real built-in student, converted from its GGUF by the
same code users run (`resolve_student("smollm2-135m")`, into a temporary RECSAVER_HOME).
The students are tiny Llama / T5 models built from a config (after TRL's tests), so a step
takes well under a second; the SFT rows are real small_beauty examples (history cut to the
last two items to keep rows short) with a written reasoning, through `build_sft`.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import typer
from safetensors.torch import load_file
from typer.testing import CliRunner

from recsaver.backends.base import GenerationRequest
from recsaver.backends.hf import HFBackend, prompt_token_ids
from recsaver.data.records import load_examples, read_jsonl, write_jsonl
from recsaver.prompts import parse_answer
from recsaver.steps.distill import build_sft
from recsaver.steps.finetune import FinetuneConfig, run_finetune
from recsaver.training.rows import IGNORE, load_rows, tokenize_row
from recsaver.training.trainer import resolve_student

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One intra-op thread: two OpenMP threads on a shared 2-core machine spin-wait on each other."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def smol_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built-in student converted from its GGUF into a fresh RECSAVER_HOME."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECSAVER_HOME", str(home))
        path = Path(resolve_student("smollm2-135m"))
        assert path.parent == home / "hf"
        assert resolve_student("hf/smollm2-135m") == str(path)  # converted once, then reused
    return path


@pytest.fixture(scope="module")
def tokenizer(smol_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smol_dir)


@pytest.fixture(scope="module")
def tiny_llama(tokenizer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=2048,
                      bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                      pad_token_id=tokenizer.pad_token_id)
    out = tmp_path_factory.mktemp("tiny_llama")
    LlamaForCausalLM(cfg).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tiny_t5(tokenizer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    cfg = T5Config(vocab_size=len(tokenizer), d_model=16, d_ff=32, d_kv=8, num_layers=1, num_decoder_layers=1,
                   num_heads=2, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                   decoder_start_token_id=tokenizer.pad_token_id)
    out = tmp_path_factory.mktemp("tiny_t5")
    T5ForConditionalGeneration(cfg).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def sft(small_beauty: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Reasoning and rating-only SFT folders from 4 real train examples (one teacher sample each)."""
    td = tmp_path_factory.mktemp("teacher")
    examples = [replace(e, history=e.history[-2:]) for e in load_examples(small_beauty / "train.jsonl")[:4]]
    write_jsonl(td / "examples.jsonl", (e.to_dict() for e in examples))
    write_jsonl(td / "samples.jsonl", (
        {"example_id": e.example_id, "sample": 0, "rating_true": e.rating, "teacher_rating": e.rating,
         "reasoning": f"The user rated {e.history[-1].item.title} with {e.history[-1].rating} stars."}
        for e in examples))
    out = {"reasoning": tmp_path_factory.mktemp("sft"), "rating-only": tmp_path_factory.mktemp("sft_rating")}
    build_sft(td, "none", out["reasoning"])
    build_sft(td, "none", out["rating-only"], rating_only=True)
    return out


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path / ("adapter_model.safetensors" if (path / "adapter_model.safetensors").exists()
                                 else "model.safetensors")))


def losses(out: Path) -> list[float]:
    return [r["loss"] for r in read_jsonl(out / "train_log.jsonl")]


def test_the_loss_covers_the_target_only(tokenizer, sft):
    row = load_rows(sft["reasoning"])[0]
    tokens = tokenize_row(tokenizer, row, is_seq2seq=False, max_length=4096)
    prompt = prompt_token_ids(tokenizer, GenerationRequest.from_messages(row["messages"][:1]))
    n = len(prompt)
    # the prompt is the exact token sequence the hf backend feeds the student at inference
    assert tokens["input_ids"][:n] == prompt and tokens["labels"][:n] == [IGNORE] * n
    learned = tokenizer.decode(tokens["labels"][n:])
    assert learned == row["completion"] + "<|im_end|>\n"  # the answer, then the end of the turn
    assert parse_answer(row["completion"], "cot").rating == row["rating_true"]
    s2s = tokenize_row(tokenizer, row, is_seq2seq=True, max_length=4096)
    assert s2s["input_ids"] == prompt and s2s["labels"][-1] == tokenizer.eos_token_id
    assert tokenizer.decode(s2s["labels"][:-1]) == row["completion"]
    assert tokenize_row(tokenizer, row, is_seq2seq=False, max_length=n + 3) is None


def test_full_finetune_moves_the_weights_and_the_loss_falls(tiny_llama, sft, tmp_path):
    out = tmp_path / "full"
    cfg = FinetuneConfig(train=str(sft["reasoning"]), model=str(tiny_llama), lora=None, lr=1e-2, dropout=0.0,
                         max_steps=8, save_steps=100)
    metrics = run_finetune(cfg, out)
    assert metrics["global_step"] == 8 and metrics["rows"] == 4 and metrics["rows_too_long"] == 0
    log = losses(out)
    assert len(log) == 8 and metrics["first_loss"] == log[0]
    assert sum(log[-2:]) / 2 < log[0] - 0.2, log
    before, after = weights(tiny_llama), weights(out)
    assert any(not torch.equal(before[k], after[k]) for k in before)
    resolved = json.loads((out / "finetune_config.json").read_text())
    assert resolved["base_model"] == str(tiny_llama) and resolved["lora"] is None and resolved["full_dropout"] == 0.0
    run = json.loads((out / "run.json").read_text())
    assert run["step"] == "finetune" and run["data"]["sha256"] == resolved["train_sha256"]
    assert (out / "checkpoints" / "checkpoint-8").is_dir()  # saved at the end too


def test_lora_resumes_where_it_stopped(tiny_llama, sft, tmp_path):
    targets = ("q_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    common = dict(train=str(sft["reasoning"]), model=str(tiny_llama), lora=4, lora_targets=targets, lr=5e-2,
                  dropout=0.0, scheduler="constant", save_steps=3,
                  merge=False)
    straight = tmp_path / "straight"
    run_finetune(FinetuneConfig(**common, max_steps=6), straight)

    out = tmp_path / "resumed"
    first = run_finetune(FinetuneConfig(**common, max_steps=3), out)  # the "interrupted" run
    assert first["global_step"] == 3
    with pytest.raises(ValueError, match="pass --resume"):
        run_finetune(FinetuneConfig(**common, max_steps=6), out)
    with pytest.raises(ValueError, match="lora 4 -> 8"):
        run_finetune(FinetuneConfig(**{**common, "lora": 8}, max_steps=6, resume=True), out)
    second = run_finetune(FinetuneConfig(**common, max_steps=6, resume=True), out)
    assert second["global_step"] == 6 and second["resumed_from_step"] == 3
    assert [r["step"] for r in read_jsonl(out / "train_log.jsonl")] == [1, 2, 3, 4, 5, 6]
    # optimizer, RNG and data position came back: the same weights as six steps in one go
    a, b = weights(straight), weights(out)
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert losses(out) == pytest.approx(losses(straight), abs=1e-5)
    assert losses(out)[-1] < losses(out)[0]
    assert any(k.endswith("lora_B.weight") and v.abs().sum() > 0 for k, v in b.items())  # B starts at zero


def test_seq2seq_student(tiny_t5, sft, tmp_path):
    out = tmp_path / "t5"
    metrics = run_finetune(FinetuneConfig(train=str(sft["reasoning"]), model=str(tiny_t5), lora=None, lr=1e-2,
                                          dropout=0.0, max_steps=6), out)
    log = losses(out)
    assert metrics["global_step"] == 6 and sum(log[-2:]) / 2 < log[0] - 0.2, log
    before, after = weights(tiny_t5), weights(out)
    assert any(not torch.equal(before[k], after[k]) for k in before)
    student = HFBackend(str(out), device="cpu")  # the result loads and rates like any seq2seq model
    try:
        assert student.is_seq2seq
        row = load_rows(sft["reasoning"])[0]
        probs, mass = student.rating_distribution(
            prompt_token_ids(student.tokenizer, GenerationRequest.from_messages(row["messages"][:1])), "")
        assert sum(probs) == pytest.approx(1.0) and 0 < mass <= 1
    finally:
        student.close()


def test_cli_trains_a_lora_student_and_predict_runs_it(tiny_llama, sft, small_beauty, tmp_path):
    from recsaver.cli import app as main_app
    from recsaver.cli.distill import register

    app = typer.Typer()
    register(app)
    out = tmp_path / "student"
    result = CliRunner().invoke(app, ["finetune", "--train", str(sft["rating-only"]), "--model", str(tiny_llama),
                                      "--out", str(out), "--lora", "4", "--max-steps", "2", "--lr", "1e-2",
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "2 steps" in result.output
    assert (out / "adapter_config.json").exists() and not (out / "config.json").exists()
    assert (out / "merged" / "config.json").exists()

    outputs = {}
    for name, model in (("adapter", out), ("merged", out / "merged")):
        run = tmp_path / name
        args = ["predict", "--data", str(small_beauty), "--limit", "1", "--method", "direct", "--max-tokens", "4",
                "--model", f"hf/{model}", "--cache", str(tmp_path / "c.sqlite"), "--out", str(run), "--no-progress"]
        result = CliRunner().invoke(main_app, args)
        assert result.exit_code == 0, result.output
        (pred,) = read_jsonl(run / "predictions.jsonl")
        assert pred["rating_pred"] in (1, 2, 3, 4, 5) and sum(pred["probs"]) == pytest.approx(1.0)
        outputs[name] = (pred, json.loads((run / "run.json").read_text())["model_id"])
    assert "+adapter:sha256:" in outputs["adapter"][1]
    # base + adapter and the merged copy are the same student
    assert outputs["adapter"][0]["probs"] == pytest.approx(outputs["merged"][0]["probs"], abs=1e-4)

    bad = CliRunner().invoke(app, ["finetune", "--train", str(sft["rating-only"]), "--model", str(tiny_llama),
                                   "--out", str(out), "--lora", "4", "--full", "--no-progress"])
    assert bad.exit_code == 2 and "either --lora RANK or --full" in bad.output


def test_builtin_student_is_a_plain_checkpoint(smol_dir):
    from transformers import AutoConfig

    assert (smol_dir / "model.safetensors").exists() and (smol_dir / "tokenizer.json").exists()
    assert AutoConfig.from_pretrained(smol_dir).model_type == "llama"
    assert getattr(AutoConfig.from_pretrained(smol_dir), "quantization_config", None) is None
    source = json.loads((smol_dir / "recsaver_source.json").read_text())
    assert smol_dir.name == source["sha256"][:16]


def test_bad_inputs_name_the_file_and_field(tmp_path):
    bad = tmp_path / "train.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]}\n'
                   '{"messages": [{"role": "user", "content": "x"}]}\n')
    with pytest.raises(ValueError, match=r"train.jsonl:2: field 'messages'"):
        load_rows(tmp_path)
    with pytest.raises(FileNotFoundError, match="distill build"):
        load_rows(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="lora must be a rank"):
        FinetuneConfig(train="x", lora=0)
    with pytest.raises(ValueError, match="dropout must be in"):
        FinetuneConfig(train="x", dropout=1.5)
