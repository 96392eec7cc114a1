"""TRL-style recipe flags: `--config FILE` and `--KEY VALUE` work beside `--recipe NAME` and `--set`."""

from __future__ import annotations

import dataclasses

import pytest
from trl import ModelConfig, ScriptArguments

import training.__main__ as cli
from training.config import TrainConfig, recipe_from_args
from training.config_loader import RECIPES_DIR, field_flags


def parsed(argv: list[str], monkeypatch: pytest.MonkeyPatch):
    """The args `python -m training` hands a command (the command itself not run)."""
    seen = []
    command = type("Command", (), {"run": staticmethod(lambda args: seen.append(args) or 0)})
    monkeypatch.setattr(cli, "importlib", type("Importlib", (), {"import_module": lambda name: command}))
    assert cli.main(argv) == 0
    return seen[0]


def test_trl_style_flags_accumulate_after_set(monkeypatch):
    argv = ["train", "--config", str(RECIPES_DIR / "tiny.yaml"), "--set", "seed=3", "max_steps=7"]
    argv += ["--set", "logging_steps=2", "--learning_rate", "1e-4", "--max_steps=-1", "--output_dir", "RUN"]
    args = parsed(argv, monkeypatch)
    assert args.set == ["seed=3", "max_steps=7", "logging_steps=2"]
    assert [pair for _, pair in args.field_flags] == ["learning_rate=1e-4", "max_steps=-1"]
    assert args.output_dir == "RUN" and args.recipe.endswith("tiny.yaml")
    config, keys = recipe_from_args(args)
    assert (config.learning_rate, config.max_steps, config.seed, config.logging_steps) == (1e-4, -1, 3, 2)
    assert config.recipe_name == "tiny" and "learning_rate" in keys


def test_field_flags_forms():
    assert field_flags(["--packing", "--max-length", "64", "--eval_strategy=no"]) == [
        ("--packing", "packing=true"),
        ("--max-length", "max_length=64"),
        ("--eval_strategy", "eval_strategy=no"),
    ]
    with pytest.raises(ValueError, match="unrecognized arguments: oops"):
        field_flags(["oops"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--learnin_rate", "1e-4"], "unrecognized arguments: --learnin_rate (no recipe field"),
        (["train", "--learnin_rate", "1e-4"], "did you mean --learning_rate?"),
        (["prepare", "--set", "max_steps=2", "--lora_rr", "8"], "unrecognized arguments: --lora_rr"),
        (["train", "--learning_rate", "abc"], "learning_rate='abc' has the wrong type"),
        (["complete", "--prompt", "x", "--max_steps", "3"], "unrecognized arguments: --max_steps 3"),
    ],
)
def test_a_bad_field_flag_is_one_line(argv, message, capsys, monkeypatch):
    monkeypatch.setattr("training.train.train", lambda *a, **k: pytest.fail("trained"))
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_fields_trl_has_keep_trls_names():
    """A recipe key that TRL's ModelConfig also has means the same there (the alignment-handbook pattern)."""
    ours = {f.name for f in dataclasses.fields(TrainConfig)}
    for name in ("model_name_or_path", "model_revision", "dtype", "attn_implementation", "lora_r"):
        assert name in ours and name in {f.name for f in dataclasses.fields(ModelConfig)}
    for name in ("lora_alpha", "lora_dropout", "lora_target_modules"):
        assert name in ours and name in {f.name for f in dataclasses.fields(ModelConfig)}
    assert {f.name for f in dataclasses.fields(ScriptArguments)} >= {"dataset_name", "dataset_train_split"}
