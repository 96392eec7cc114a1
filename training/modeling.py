"""Loading tokenizers, base models (bf16, 4-bit NF4 or a locally built tiny one) and LoRA adapters.

Training and evaluation both go through these functions so that a base model is always loaded the same way:
at a pinned revision, with the best attention kernel available, and with a clear error (saying what to do)
when a requested setting cannot work on this machine.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from flyte_llama_common.ids import is_sha
from training.config import is_tiny


def _check_loadable(name_or_path: str) -> None:
    if is_tiny(name_or_path):
        raise ValueError(
            f"{name_or_path!r} is built by `python -m training train --recipe tiny`, not downloaded: "
            "load it from that run's RUN/base folder (the adapter's base_model_name_or_path points there)."
        )


def load_tokenizer(name_or_path: str, revision: str | None = None):
    """The tokenizer of a Hub model at `revision`, or of a local folder (e.g. RUN/base or RUN/adapter)."""
    _check_loadable(name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(name_or_path, revision=revision)
    if tokenizer.pad_token is None:
        # Padding positions are masked by attention_mask/labels; EOS itself stays a trained token.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype | str:
    """'bfloat16' / 'float16' / 'float32' / 'auto' / a torch.dtype → what from_pretrained accepts."""
    if isinstance(dtype, torch.dtype) or dtype == "auto":
        return dtype
    try:
        return {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[dtype]
    except KeyError:
        raise ValueError(f"dtype {dtype!r} is not one of bfloat16, float16, float32, auto") from None


def best_attention() -> str:
    """flash_attention_2 when installed and a CUDA GPU is present, else PyTorch's fused sdpa."""
    if torch.cuda.is_available() and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def quantization_config(quantization: str | None, compute_dtype: torch.dtype = torch.bfloat16):
    """A bitsandbytes 4-bit NF4 config for QLoRA (`quantization: nf4`), or None."""
    if quantization is None:
        return None
    if quantization != "nf4":
        raise ValueError(f"quantization {quantization!r} is not supported: use null or 'nf4'")
    if not torch.cuda.is_available():
        raise RuntimeError(
            "4-bit NF4 (QLoRA) needs a CUDA GPU and none is visible. Use the codellama-7b-lora recipe, "
            "or run on a machine with an NVIDIA GPU."
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        raise RuntimeError("4-bit NF4 (QLoRA) needs bitsandbytes: pip install 'flyte-llama[gpu]'")
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
    )


def load_base_model(
    name_or_path: str,
    revision: str | None = None,
    dtype: str | torch.dtype = "bfloat16",
    quantization: str | None = None,
    attn_implementation: str | None = None,
) -> PreTrainedModel:
    """A causal LM from the Hub at `revision` or from a local folder (a tiny base lives in RUN/base)."""
    _check_loadable(name_or_path)
    torch_dtype = resolve_dtype(dtype)
    quant = quantization_config(quantization, torch_dtype if isinstance(torch_dtype, torch.dtype) else None)
    kwargs = {}
    if quant is not None:
        # bitsandbytes places the 4-bit weights itself; each process owns one GPU.
        kwargs.update(quantization_config=quant, device_map={"": torch.cuda.current_device()})
    model = AutoModelForCausalLM.from_pretrained(
        name_or_path,
        revision=revision,
        dtype=torch_dtype,
        attn_implementation=attn_implementation or best_attention(),
        **kwargs,
    )
    return model


def adapter_base(adapter_dir: str | Path) -> tuple[str, str | None]:
    """(base_model_name_or_path, revision) recorded in an adapter folder's adapter_config.json."""
    config_path = Path(adapter_dir) / "adapter_config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path} not found: is {adapter_dir} a RUN/adapter folder?")
    config = json.loads(config_path.read_text())
    name = config["base_model_name_or_path"]
    # A locally built base is recorded relative to the run (RUN/adapter/..), never as an absolute path.
    if isinstance(name, str) and name.startswith(("./", "../")):
        name = str((Path(adapter_dir).resolve().parent / name).resolve())
    return name, config.get("revision")


def load_adapter_model(
    base: PreTrainedModel | str | None,
    adapter_dir: str | Path,
    dtype: str | torch.dtype = "bfloat16",
    quantization: str | None = None,
):
    """A PeftModel: the adapter in `adapter_dir` on `base` (a loaded model, a name/path, or None = the
    base recorded in the adapter's config, at its recorded revision)."""
    from peft import PeftModel

    if base is None or isinstance(base, str):
        name, revision = adapter_base(adapter_dir)
        base = load_base_model(base or name, revision if base is None else None, dtype, quantization)
    return PeftModel.from_pretrained(base, str(adapter_dir))


def pin_revision(repo_id: str, revision: str | None) -> str | None:
    """A Hub model's revision as a 40-hex commit SHA (what the adapter records); local folders → None.

    A SHA is returned as is (works offline from the HF cache). A branch or tag is resolved through the Hub,
    so it needs the network; without it the error says how to pin the recipe instead.
    """
    if Path(repo_id).expanduser().exists():
        return None
    if revision is not None and is_sha(revision):
        return revision
    from huggingface_hub import HfApi

    try:
        return HfApi().model_info(repo_id, revision=revision).sha
    except Exception as exc:
        raise RuntimeError(
            f"cannot resolve {repo_id}@{revision or 'main'} to a commit SHA without the Hub "
            f"({type(exc).__name__}: {exc}). Put the 40-hex commit SHA in the recipe "
            "(`--set model_revision=<sha>`) to train offline from the local HF cache."
        ) from exc
