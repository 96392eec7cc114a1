"""Recipes in TRL's names: TrlParser builds the same config as the project's loader, old keys fail naming the
new one, and a schedule given in tokens/fractions refuses the step counts it derives."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from trl import ModelConfig, ScriptArguments

import training.__main__ as cli
from training.config import RECIPES_DIR, load_recipe, trl_parser
from training.schedule import derive

SFT_RECIPES = sorted(p.stem for p in RECIPES_DIR.glob("*.yaml") if not p.stem.endswith("-pretrain"))
ON_CPU = {} if torch.cuda.is_available() else {"use_cpu": True, "bf16": False}


@pytest.mark.parametrize("name", SFT_RECIPES)
def test_trl_parser_builds_the_same_config_as_the_loader(name):
    """The alignment-handbook way (`TrlParser(...).parse_args_and_config(["--config", yaml, ...])`)."""
    argv = ["--config", str(RECIPES_DIR / f"{name}.yaml"), "--learning_rate", "0.0001", "--seed", "7"]
    argv += [x for k, v in ON_CPU.items() for x in (f"--{k}", str(v))]
    (theirs,) = trl_parser().parse_args_and_config(argv)
    ours = load_recipe(name, {**ON_CPU, "learning_rate": 1e-4, "seed": 7})
    differ = [
        f.name
        for f in dataclasses.fields(ours)
        if f.name != "recipe_name" and getattr(ours, f.name) != getattr(theirs, f.name)
    ]
    assert differ == []
    assert (theirs.learning_rate, theirs.seed) == (1e-4, 7)


def test_recipe_keys_trl_has_are_trls():
    trl_names = {f.name for f in dataclasses.fields(ModelConfig)} | {
        f.name for f in dataclasses.fields(ScriptArguments)
    }
    used = {
        "dataset_name",
        "dataset_train_split",
        "dataset_test_split",
        "load_in_4bit",
        "bnb_4bit_quant_type",
    }
    assert used <= trl_names
    for name in SFT_RECIPES:
        keys = set((RECIPES_DIR / f"{name}.yaml").read_text().split())
        assert not {"dataset:", "train_split:", "eval_split:", "quantization:"} & keys, name


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--set", "dataset=x"], "field 'dataset' was renamed to TRL's name: write dataset_name instead"),
        (["--set", "eval_split=null"], "write dataset_test_split instead"),
        (["--set", "train_split=train"], "write dataset_train_split instead"),
        (
            ["--quantization", "nf4"],
            "unrecognized arguments: --quantization (field 'quantization' was renamed",
        ),
    ],
)
def test_old_keys_fail_naming_the_new_one(argv, message, capsys, monkeypatch):
    monkeypatch.setattr("training.train.train", lambda *a, **k: pytest.fail("trained"))
    assert cli.main(["train", "--recipe", "tiny", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_old_key_in_a_users_yaml(tmp_path):
    recipe = tmp_path / "mine.yaml"
    recipe.write_text((RECIPES_DIR / "tiny.yaml").read_text().replace("dataset_name:", "dataset:"))
    with pytest.raises(ValueError, match=f"{recipe}: field 'dataset' was renamed.*dataset_name"):
        load_recipe(str(recipe))


def test_dataset_flag_is_an_alias_of_dataset_name(monkeypatch):
    seen = []
    command = type("Command", (), {"run": staticmethod(lambda args: seen.append(args) or 0)})
    monkeypatch.setattr(cli, "importlib", type("I", (), {"import_module": lambda name: command}))
    from training.config import recipe_from_args

    assert cli.main(["train", "--dataset", "/data/a"]) == 0
    assert recipe_from_args(seen[0])[0].dataset_name == "/data/a"
    assert cli.main(["train", "--dataset_name", "/data/b"]) == 0
    assert recipe_from_args(seen[1])[0].dataset_name == "/data/b"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"global_batch_tokens": 1000}, "must be a multiple of max_length"),
        ({"global_batch_tokens": 256 * 12}, "not a multiple of per_device_train_batch_size=8"),
        ({"global_batch_tokens": 2048, "gradient_accumulation_steps": 2}, "remove one of the two"),
        ({"warmup_ratio": 0.1, "warmup_steps": 5}, "warmup_steps is derived from warmup_ratio"),
        ({"evals_per_run": 3}, "eval_steps is derived from evals_per_run"),
        (
            {"evals_per_run": 3, "eval_steps": None, "eval_strategy": "no"},
            "evals_per_run needs eval_strategy",
        ),
        ({"warmup_ratio": 1.5}, "warmup_ratio=1.5: must be between 0 and 1"),
        ({"checkpoints_per_run": 0}, "checkpoints_per_run=0: must be positive"),
    ],
)
def test_schedule_conflicts_are_clear_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        load_recipe("tiny", overrides)


@pytest.mark.parametrize("world_size", [1, 2, 8])
def test_lora_and_qlora_train_the_same_steps_on_any_world_size(world_size):
    lora, qlora = (load_recipe(f"codellama-7b-{m}", ON_CPU) for m in ("lora", "qlora"))
    base = derive(lora, 1470, 1)
    for config in (lora, qlora):
        s = derive(config, 1470, world_size)
        assert (s.total_steps, s.rows_per_step, s.warmup_steps) == (
            base.total_steps,
            base.rows_per_step,
            base.warmup_steps,
        )
        assert (
            s.rows_per_step == s.gradient_accumulation_steps * world_size * config.per_device_train_batch_size
        )
        assert s.evaluations == 8 and s.checkpoints == 4  # evals_per_run / checkpoints_per_run exactly
    # `gpus` (the Flyte resource request) does not change the schedule
    more = load_recipe("codellama-7b-lora", {**ON_CPU, "gpus": 8})
    assert derive(more, 1470, 1) == base


def test_a_world_size_that_cannot_divide_the_batch_says_which_do():
    lora = load_recipe("codellama-7b-lora", ON_CPU)  # 16 rows per step, 2 per device
    with pytest.raises(ValueError, match=r"use a world size in \[1, 2, 4, 8\]"):
        derive(lora, 1470, 3)
