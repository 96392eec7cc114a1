"""The tiny recipe trains real steps end to end: logs, LoRA-only updates, resume, a reloadable adapter."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_training_data import make_corpus

from training.__main__ import main
from training.modeling import adapter_base, load_adapter_model, load_base_model

STEPS = ["--set", "max_steps=6", "eval_steps=3", "save_steps=3", "max_train_docs=200", "logging_steps=2"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("corpus") / "corpus", 150, 10)


@pytest.fixture(scope="module")
def run(tmp_path_factory, corpus):
    run_dir = tmp_path_factory.mktemp("run")
    assert (
        main(["train", "--recipe", "tiny", "--dataset", str(corpus), "--output-dir", str(run_dir), *STEPS])
        == 0
    )
    return run_dir


@pytest.mark.slow
def test_trains_and_logs_finite_losses(run):
    log = json.loads((run / "adapter" / "training_log.json").read_text())
    train_losses = [r["loss"] for r in log["log_history"] if "loss" in r]
    eval_losses = [r["eval_loss"] for r in log["log_history"] if "eval_loss" in r]
    assert len(train_losses) == 3 and all(math.isfinite(x) for x in train_losses)
    assert len(eval_losses) >= 2 and all(math.isfinite(x) for x in eval_losses)
    summary = log["summary"]
    assert summary["global_step"] == 6 and summary["objective"] == "fim" and summary["max_length"] == 256
    assert summary["train_tokens"] > 6 * 256  # counted from the batches actually seen: several docs a step
    import transformers

    assert summary["versions"]["transformers"] == transformers.__version__  # recorded when it trained
    assert {"torch", "trl", "peft", "python"} <= set(summary["versions"])
    assert set(summary) >= {"train_runtime_s", "hardware", "fim_rate", "spm_rate", "dataset"}


@pytest.mark.slow
def test_adapter_folder_is_publishable(run):
    adapter = run / "adapter"
    names = {p.name for p in adapter.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "training_log.json", "recipe.yaml"} <= names
    assert "tokenizer.json" in names and "tokenizer_config.json" in names
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pth", ".pkl"))]
    assert not (run / "adapter.tmp").exists()
    assert adapter_base(adapter) == (str((run / "base").resolve()), None)
    assert "max_steps: 6" in (adapter / "recipe.yaml").read_text()
    assert (run / "checkpoints" / "checkpoint-6").is_dir()


@pytest.mark.slow
def test_only_lora_weights_changed(run):
    weights = load_file(run / "adapter" / "adapter_model.safetensors")
    assert weights and all("lora_" in k for k in weights)
    lora_b = [v for k, v in weights.items() if "lora_B" in k]
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b)  # B starts at zero: it moved
    base = load_base_model(str(run / "base"), dtype="float32")
    peft = load_adapter_model(None, run / "adapter", dtype="float32")
    tuned = {
        k.replace("base_model.model.", "").replace(".base_layer", ""): v for k, v in peft.state_dict().items()
    }
    for name, value in base.state_dict().items():
        assert torch.equal(value, tuned[name]), name  # the base model is untouched


@pytest.mark.slow
def test_adapter_reloads_with_identical_logits(run, monkeypatch):
    from peft import AutoPeftModelForCausalLM, PeftModel

    # The locally built base is recorded relative to the run ("./base", no absolute path of this machine):
    # AutoPeftModelForCausalLM resolves it from the working directory, so load from the run folder.
    monkeypatch.chdir(run)
    ids = torch.tensor([[1, 5, 17, 42, 99, 3, 7]])
    auto = AutoPeftModelForCausalLM.from_pretrained(str(run / "adapter"), dtype=torch.float32).eval()
    base = load_base_model(str(run / "base"), dtype="float32")
    manual = PeftModel.from_pretrained(base, str(run / "adapter")).eval()
    with torch.no_grad():
        a, b = auto(ids).logits, manual(ids).logits
        plain = load_base_model(str(run / "base"), dtype="float32")(ids).logits
    assert torch.equal(a, b)
    assert not torch.allclose(a, plain)  # the adapter does something


@pytest.mark.slow
def test_resume_continues_the_step_count(run, corpus, capsys):
    args = ["train", "--recipe", "tiny", "--dataset", str(corpus), "--output-dir", str(run)]
    assert main([*args, *STEPS]) == 2  # checkpoints exist: a clear error, not a silent restart
    assert "already has checkpoint-6: pass --resume" in capsys.readouterr().err
    assert main([*args, "--resume", *STEPS[:-4], "max_steps=9", "save_steps=3", "logging_steps=2"]) == 0
    log = json.loads((run / "adapter" / "training_log.json").read_text())
    steps = [r["step"] for r in log["log_history"] if "loss" in r]
    assert log["summary"]["global_step"] == 9 and steps[:3] == [2, 4, 6] and steps[-1] == 8


def test_resume_without_checkpoint_is_a_clear_error(tmp_path, corpus, capsys):
    args = ["train", "--recipe", "tiny", "--dataset", str(corpus), "--output-dir", str(tmp_path), "--resume"]
    assert main(args) == 2
    assert "--resume: no checkpoint under" in capsys.readouterr().err


@pytest.mark.slow
def test_accelerate_two_processes_on_cpu(tmp_path, corpus):
    """The distributed path (DDP over gloo) trains and writes the adapter exactly once.

    accelerate 1.15 runs `launch --num_processes 2 --cpu` as ONE process (its simple launcher); two CPU
    processes need the torchrun path, `--multi_gpu`, which on a machine without CUDA uses gloo (the tiny
    recipe sets use_cpu). The summary's process count proves two ranks trained.
    """
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    cmd += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    cmd += [
        "-m",
        "training",
        "train",
        "--recipe",
        "tiny",
        "--dataset",
        str(corpus),
        "--output-dir",
        str(tmp_path),
    ]
    cmd += ["--set", "max_steps=4", "eval_steps=2", "save_steps=2", "max_train_docs=100"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        cmd, capture_output=True, text=True, timeout=300, env=env, cwd=Path(__file__).parents[1]
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("training summary") == 1  # only rank 0 reports and saves
    log = json.loads((tmp_path / "adapter" / "training_log.json").read_text())
    assert log["summary"]["global_step"] == 4 and "2 process(es)" in log["summary"]["hardware"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter", "base", "checkpoints"]
