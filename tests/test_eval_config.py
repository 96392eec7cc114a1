"""The evaluation is configured one way: EvalConfig, from flags, YAML or code, validated before any load."""

from __future__ import annotations

import argparse

import pytest

from training.__main__ import main as training_main
from training.eval_config import (
    FIELDS,
    EvalConfig,
    command_flags,
    eval_config_from_args,
    evaluate_parser,
    given_fields,
)


def _config(argv: list[str]) -> EvalConfig:
    args = evaluate_parser().parse_args(argv)
    return eval_config_from_args(args, given_fields(args))


def test_yaml_then_set_then_flags(tmp_path):
    yaml_file = tmp_path / "eval.yaml"
    yaml_file.write_text("dataset: ds\nbatch_size: 8\ninfill_tasks: 10\nmax_new_tokens: 64\n")
    config = _config(
        [
            "--config",
            str(yaml_file),
            "--set",
            "infill_tasks=20",
            "max_new_tokens=32",
            "--max-new-tokens",
            "16",
        ]
    )
    assert (config.dataset, config.batch_size, config.infill_tasks, config.max_new_tokens) == (
        "ds",
        8,
        20,
        16,
    )
    assert config.prefix_tokens == EvalConfig.__dataclass_fields__["prefix_tokens"].default


def test_a_flag_equal_to_the_default_still_overrides_the_yaml(tmp_path):
    yaml_file = tmp_path / "eval.yaml"
    yaml_file.write_text("dataset: ds\nbatch_size: 8\n")
    assert _config(["--config", str(yaml_file), "--batch-size", "4"]).batch_size == 4


def test_every_field_is_a_flag_and_nothing_else_is():
    parser = evaluate_parser()
    dests = {a.dest for a in parser._actions} - {"help", "config", "set"}
    assert dests == set(FIELDS)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--set", "infil_tasks=3", "--dataset", "d"],
            "unknown evaluation field 'infil_tasks' (did you mean",
        ),
        (["--set", "batch_size=abc", "--dataset", "d"], "batch_size='abc' must be an integer"),
        (["--set", "batch_size=0", "--dataset", "d"], "batch_size=0 must be positive"),
        (["--set", "infill_mode=fim", "--dataset", "d"], "infill_mode='fim': use one of psm, spm"),
        (["--set", "batch_size"], "is not KEY=VALUE"),
        ([], "dataset is empty"),
    ],
)
def test_bad_values_are_one_line_errors_before_any_load(argv, message, capsys):
    assert training_main(["evaluate", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_bad_yaml_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "eval.yaml"
    bad.write_text("- a\n- b\n")
    assert training_main(["evaluate", "--config", str(bad)]) == 2
    assert "not a mapping of field: value" in capsys.readouterr().err
    bad.write_text("dataset: [\n")
    assert training_main(["evaluate", "--config", str(bad)]) == 2
    assert "is not valid YAML" in capsys.readouterr().err


def test_a_revision_that_looks_like_a_number_stays_text():
    assert _config(["--dataset", "d", "--set", "dataset_revision=1.0"]).dataset_revision == "1.0"


def test_stages_take_the_config_not_argv():
    from training.evaluate import evaluate

    with pytest.raises(TypeError, match="takes an EvalConfig"):
        evaluate(argparse.Namespace(dataset="d"))
    with pytest.raises(ValueError, match="max_docs=-1 must be positive"):
        EvalConfig(dataset="d").replace(max_docs=-1)


def test_command_flags_reproduce_the_config():
    config = EvalConfig(dataset="d", batch_size=8, infill_mode="spm", context=256)
    assert _config(command_flags(config)) == config
