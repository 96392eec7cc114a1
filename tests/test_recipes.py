"""Every recipe and accelerate config loads and validates; bad values fail with errors that say what to do."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from training.config import RECIPES_DIR, load_recipe, parse_overrides
from training.modeling import load_base_model, pin_revision, quantization_config

ACCELERATE_DIR = Path(__file__).parents[1] / "training" / "accelerate"
# `*-pretrain` recipes belong to training/pretrain.py (full-parameter pretraining of the mini base), not SFT.
RECIPES = sorted(p.stem for p in RECIPES_DIR.glob("*.yaml") if not p.stem.endswith("-pretrain"))
# The 7B recipes train in bf16 on a GPU; on this CPU-only test machine they are validated with use_cpu.
ON_CPU = {} if torch.cuda.is_available() else {"use_cpu": True}


def test_the_issue_recipes_exist():
    assert set(RECIPES) >= {"tiny", "codellama-7b-lora", "codellama-7b-qlora"}


@pytest.mark.parametrize("name", RECIPES)
def test_every_recipe_loads_and_validates(name):
    config = load_recipe(name, ON_CPU)
    assert config.recipe_name == name and config.max_length >= 32


@pytest.mark.parametrize("name", ["tiny", "codellama-7b-lora", "codellama-7b-qlora"])
def test_recipe_settings(name):
    config = load_recipe(name, None if name == "tiny" else ON_CPU)
    assert config.packing and config.packing_strategy == "bfd" and config.eval_packing is False
    assert config.objective == "fim" and (config.fim_rate, config.spm_rate) == (0.9, 0.5)
    assert config.report_to == [] or config.report_to == ["none"] or config.report_to == "none"
    assert set(config.lora_target_modules) == {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    }


def test_codellama_recipes():
    lora = load_recipe("codellama-7b-lora", ON_CPU)
    assert lora.model_name_or_path == "codellama/CodeLlama-7b-hf" and lora.model_revision
    assert (lora.lora_r, lora.lora_alpha, lora.max_length, lora.dtype) == (16, 32, 16384, "bfloat16")
    assert lora.bf16 and lora.activation_checkpointing and lora.quantization is None
    assert not lora.load_in_4bit
    qlora = load_recipe("codellama-7b-qlora", ON_CPU)
    assert qlora.quantization == "nf4" and qlora.max_length == 16384
    assert qlora.load_in_4bit and qlora.bnb_4bit_quant_type == "nf4"  # TRL ModelConfig's names


def test_tiny_recipe_is_cpu_friendly():
    tiny = load_recipe("tiny")
    assert tiny.is_tiny and not tiny.bf16 and tiny.max_length == 256 and tiny.max_steps > 0


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"fim_rate": 1.5}, "fim_rate=1.5: must be between 0 and 1"),
        ({"objective": "infill"}, "use `fim` or `clm`"),
        ({"lora_r": "16"}, "lora_r='16' has the wrong type"),
        ({"lora_r": 0}, "both must be positive"),
        ({"max_length": 8}, "at least 32 tokens"),
        ({"load_in_4bit": True, "bnb_4bit_quant_type": "fp4"}, "only nf4 is supported"),
        ({"quantization": "nf4"}, "renamed to TRL's name: write load_in_4bit: true"),
        ({"dtype": "fp8"}, "use bfloat16"),
        ({"lora_target_modules": []}, "lora_target_modules is empty"),
        ({"fim_rat": 0.5}, "did you mean 'fim_rate'"),
    ],
)
def test_bad_values_are_clear_errors(overrides, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_recipe("tiny", overrides)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only message")
def test_bf16_recipe_on_cpu_says_what_to_do():
    with pytest.raises(ValueError, match="--recipe tiny"):
        load_recipe("codellama-7b-lora")


def test_unknown_recipe_and_overrides():
    with pytest.raises(FileNotFoundError, match="choose one of codellama-7b-lora"):
        load_recipe("nope")
    assert parse_overrides(["max_steps=5", "report_to=[wandb]", "model_revision=null"]) == {
        "max_steps": 5,
        "report_to": ["wandb"],
        "model_revision": None,
    }
    # YAML 1.1 reads `no` as False; the Trainer's strategies want the string.
    assert parse_overrides(["eval_strategy=no", "packing=false"]) == {"eval_strategy": "no", "packing": False}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_overrides(["max_steps"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_qlora_without_gpu_is_a_clear_error():
    with pytest.raises(RuntimeError, match="needs a CUDA GPU"):
        quantization_config("nf4")
    assert quantization_config(None) is None


def test_revision_pinning(monkeypatch, tmp_path):
    sha = "0123456789abcdef0123456789abcdef01234567"
    assert pin_revision("codellama/CodeLlama-7b-hf", sha) == sha  # no network needed
    assert pin_revision(str(tmp_path), "main") is None  # local folders have no revision
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RuntimeError, match="40-hex commit SHA"):
        pin_revision("codellama/CodeLlama-7b-hf", "main")
    with pytest.raises(ValueError, match="RUN/base"):
        load_base_model("tiny")


@pytest.mark.parametrize("name, kind", [("fsdp", "FSDP"), ("deepspeed_zero3", "DEEPSPEED")])
def test_accelerate_configs(name, kind):
    config = yaml.safe_load((ACCELERATE_DIR / f"{name}.yaml").read_text())
    assert config["distributed_type"] == kind and config["mixed_precision"] == "bf16"
    assert config["num_processes"] >= 2
    text = (ACCELERATE_DIR / f"{name}.yaml").read_text()
    assert f"accelerate launch --config_file training/accelerate/{name}.yaml -m training train" in text
