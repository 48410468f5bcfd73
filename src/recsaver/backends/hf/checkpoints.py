"""Weights on disk: their identity, loading (GGUF, PEFT adapter), GGUF -> plain checkpoint, export."""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".ckpt", ".h5", ".msgpack")
_DTYPES = {"float32": "float32", "fp32": "float32", "float": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
           "float16": "float16", "fp16": "float16", "half": "float16"}


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
        import gguf as gguf_module
    except Exception:
        yield
        return
    gguf: Any = gguf_module  # patched below: typed loosely, its attributes are replaced for a while
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
    from ...models import model_fingerprint
    from .backend import HFBackend  # here: backend.py imports this module

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
    from ...models import BUILTIN_MODELS, require_model

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


def load_pretrained(name_or_path: str, *, gguf_file: str | None, adapter: str | None, device: Any,
                    dtype: str) -> tuple[Any, Any, Any, str]:
    """(config, tokenizer, model, model_id) of a local checkpoint, hub id or GGUF (`gguf_file`), with the
    PEFT `adapter` on top when given. The model is not yet moved to `device` nor put in eval mode."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    kwargs: dict[str, Any] = {"gguf_file": gguf_file} if gguf_file else {}
    with _fast_gguf_loading():
        config = AutoConfig.from_pretrained(name_or_path, **kwargs)
        is_seq2seq = bool(getattr(config, "is_encoder_decoder", False))
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, **kwargs)
        auto = AutoModelForSeq2SeqLM if is_seq2seq else AutoModelForCausalLM
        if device.type == "cuda":  # load straight onto the GPU
            kwargs["device_map"] = str(device)
        model = auto.from_pretrained(name_or_path, config=config, dtype=_torch_dtype(torch, device, dtype), **kwargs)
    commit = getattr(config, "_commit_hash", None)
    model_id = f"hf/{name_or_path}" + (f":{gguf_file}" if gguf_file else "") + "@" + weights_identity(
        name_or_path, gguf_file, commit)
    if adapter:
        from peft import PeftModel  # optional: only for adapters

        model = PeftModel.from_pretrained(model, adapter)
        model_id += "+adapter:" + weights_identity(adapter)
    return config, tokenizer, model, model_id


def _torch_dtype(torch: Any, device: Any, dtype: str) -> Any:
    if dtype == "auto":
        # on CPU: fp32 (bf16/fp16 are slow or unsupported there); on GPU: the checkpoint's dtype
        return torch.float32 if device.type == "cpu" else "auto"
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be auto or one of {sorted(_DTYPES)}, got {dtype!r}")
    return getattr(torch, _DTYPES[dtype])
