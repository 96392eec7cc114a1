"""`python -m training plan`: every recipe on a small corpus and on a length mix like the real one; the 7B
recipes must really train there (≥ 100 steps, past their warmup); `train` runs the schedule plan prints."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_training_data import make_corpus

from training.__main__ import main
from training.config import RECIPES_DIR, load_recipe
from training.data import load_corpus, write_corpus_folder
from training.modeling import load_tokenizer
from training.plan import make_plan, problems
from training.schedule import derive

SFT_RECIPES = sorted(p.stem for p in RECIPES_DIR.glob("*.yaml") if not p.stem.endswith("-pretrain"))
ON_CPU = {} if torch.cuda.is_available() else {"use_cpu": True, "bf16": False}
# Exempt from the ≥ 100 steps rule: `tiny` is the CPU smoke recipe (tests, the offline demo), a fixed 30
# steps so it finishes in under a minute on 2 cores; its schedule says nothing about real training.
EXEMPT = {"tiny": "CPU smoke recipe: a fixed max_steps sized for a one-minute run"}
GPU_RECIPES = ("codellama-7b-lora", "codellama-7b-qlora")


def _config(name: str):
    return load_recipe(name, None if name in ("tiny", "mini-lora") else ON_CPU)


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("plan") / "corpus", 150, 10)


@pytest.fixture(scope="module")
def real_like_corpus(tmp_path_factory):
    """≈ 6 M tokens at 3 chars/token over 3,900 documents with heavy-tailed (log-normal) lengths: median
    ~2.5k characters, ~7.6% longer than one 4k context, like the real train split (6.4%)."""
    rng = np.random.default_rng(0)
    chars = np.minimum(rng.lognormal(np.log(2500), 1.1, 3900).astype(int) + 40, 400_000)
    line = "    value = compute(item, 42)\n"

    def doc(i: int, c: int) -> dict:
        text = f"def f{i}(item):\n" + line * (c // len(line))
        return {"content": text, "language": "python", "repo": "r", "path": f"f{i}.py"}

    splits = {"train": [doc(i, c) for i, c in enumerate(chars)], "validation": [doc(0, 100)]}
    return write_corpus_folder(tmp_path_factory.mktemp("mix") / "corpus", splits)


@pytest.mark.slow
@pytest.mark.parametrize("name", SFT_RECIPES)
def test_plan_command_on_every_recipe(name, small_corpus, capsys):
    argv = ["plan", "--recipe", name, "--dataset", str(small_corpus), "--world-size", "2"]
    if name not in ("tiny", "mini-lora"):
        argv += ["--set", *(f"{k}={v}".lower() for k, v in ON_CPU.items())]
    assert main(argv) == 0
    out = capsys.readouterr().out
    for row in ("documents (train)", "packed rows", "optimizer steps", "tokens per step", "warmup steps"):
        assert row in out
    assert "evaluations" in out and "checkpoints" in out and "est. GPU memory" in out
    if name in GPU_RECIPES:  # no Code Llama tokenizer offline: the table says the tokens are estimated
        assert "estimated at 3 chars/token" in out


@pytest.mark.slow
def test_plan_figures_agree_with_each_other(small_corpus):
    config = _config("codellama-7b-lora")
    plan = make_plan(config, load_corpus(str(small_corpus))["train"], 8)
    s = plan.schedule
    assert plan.documents == 150 and s.packed_rows <= plan.sequences
    assert s.packed_rows * config.max_length >= plan.tokens  # packing loses no token
    assert s.tokens_per_step == s.rows_per_step * config.max_length == config.global_batch_tokens
    assert s.rows_per_step == 8 * config.per_device_train_batch_size * s.gradient_accumulation_steps


@pytest.mark.slow
@pytest.mark.parametrize("name", SFT_RECIPES)
def test_recipes_really_train_on_a_corpus_like_the_real_one(name, real_like_corpus):
    config = _config(name)
    split = load_corpus(str(real_like_corpus))["train"]
    plan = make_plan(config, split, 1)
    if name in GPU_RECIPES:
        # like the real one: ~6 M tokens in 16,384-token rows (about 6 M / 16 k, plus the packing's slack)
        assert 5.5e6 < plan.tokens < 6.5e6 and 330 < plan.schedule.packed_rows < 450
    if name in EXEMPT:
        return
    assert problems(plan) == [], f"{name}: {problems(plan)}"
    steps = {derive(config, plan.schedule.packed_rows, n).total_steps for n in (1, 2, 8)}
    assert steps == {plan.schedule.total_steps}  # 1, 2 or 8 GPUs: the same schedule
    if name in GPU_RECIPES:
        assert plan.schedule.evaluations == 8 and plan.schedule.checkpoints == 4
        assert plan.schedule.warmup_steps < plan.schedule.total_steps // 10


def test_memory_estimates_fit_the_gpus_the_recipes_name():
    from training.plan import memory_estimate, model_shape

    lora, qlora = (_config(n) for n in GPU_RECIPES)
    lora_gb = memory_estimate(lora, model_shape(lora))
    qlora_gb = memory_estimate(qlora, model_shape(qlora))
    assert 13 < lora_gb["weights"] < 14  # 6.74 B parameters in bf16
    assert 15 < lora_gb["total"] < 40 < 80  # one 80 GB GPU with room to spare
    assert qlora_gb["weights"] < 5 and qlora_gb["total"] < 24  # one 24 GB GPU
    assert 39 < lora_gb["lora_params_M"] < 41  # r=16 on all 7 linear layers of 32 blocks


@pytest.mark.slow
def test_train_runs_the_schedule_plan_prints(small_corpus, tmp_path):
    """Tokens and fractions in, the steps Trainer really ran out: the plan's packed rows are SFTTrainer's."""
    run = tmp_path / "run"
    schedule = ["global_batch_tokens=4096", "warmup_ratio=0.2", "evals_per_run=2", "checkpoints_per_run=2"]
    steps = ["max_steps=-1", "num_train_epochs=1", "eval_steps=null", "save_steps=500", "max_eval_docs=4"]
    argv = ["train", "--recipe", "tiny", "--dataset", str(small_corpus), "--output-dir", str(run)]
    assert main([*argv, "--set", *schedule, *steps]) == 0
    log = json.loads((run / "adapter" / "training_log.json").read_text())
    planned = log["summary"]["schedule"]
    assert planned["gradient_accumulation_steps"] == 2  # 16 rows of 256 per step, 8 per device, 1 process
    assert log["summary"]["global_step"] == planned["total_steps"] > 2
    assert planned["warmup_steps"] == -(-planned["total_steps"] * 2 // 10)
    evals = [r for r in log["log_history"] if "eval_loss" in r]
    assert len(evals) == planned["evaluations"] + 1 == 3  # + the final evaluation train() always runs
    saved = sorted(p.name for p in (run / "checkpoints").glob("checkpoint-*"))
    assert saved == [f"checkpoint-{planned['save_steps']}", f"checkpoint-{planned['total_steps']}"]
    # plan on the same split with the run's tokenizer counts the same packed rows
    config = load_recipe("tiny", {"global_batch_tokens": 4096})
    tokenizer = load_tokenizer(str(run / "base"))
    plan = make_plan(config, load_corpus(str(small_corpus))["train"], 1, tokenizer)
    assert plan.schedule.packed_rows == planned["packed_rows"]
