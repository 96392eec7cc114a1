"""Hostile recipes, overrides and flags for `python -m training train|prepare|evaluate|complete`: each is
refused before any work starts with exit status 2 and one line `error: ...`, and leaves no file behind; and
eval_results.json never records this machine's absolute paths."""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path

import datasets
import pytest
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

import training.complete
from training.__main__ import main as training_main
from training.config import NUMERIC_RULES, TrainConfig, load_recipe, parse_overrides
from training.eval_results import SCHEMA_VERSION, EvalResultsError, portable_location, validate_results
from training.tiny import build_tiny_model, build_tiny_tokenizer

CONTEXT = 48  # the tiny base's max_position_embeddings
PY = "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    c = a * b\n    return c\n" * 3
ROWS = [
    {"content": PY, "repo": "flytesnacks", "path": "a.py", "language": "python"},
    {"content": PY.replace("add", "plus"), "repo": "talks", "path": "b.py", "language": "python"},
]


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _fails(argv: list[str], capsys, root: Path, *fragments: str, after_load: bool = False) -> str:
    """Run the CLI; it must exit 2 with one `error:` line holding `fragments` and create nothing in `root`.
    Only an error found `after_load` (of a model) may follow the loader's progress bar on stderr."""
    before = _tree(root)
    assert training_main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert "Traceback" not in captured.err and lines[-1].startswith("error: "), captured.err
    assert len(lines) == 1 or (after_load and not any(line.startswith("error") for line in lines[:-1]))
    for fragment in fragments:
        assert fragment in lines[-1]
    assert _tree(root) == before  # no output folder, no temp file, nothing half-written
    return lines[-1]


@pytest.fixture
def cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a relative default path (runs/, eval_results.json) would land here
    return tmp_path


def _train(cwd: Path, *extra: str) -> list[str]:
    return ["train", "--dataset", str(cwd / "ds"), "--output-dir", str(cwd / "run"), *extra]


# ------------------------------------------------------------------------------------- recipe files


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("lora_r: [8\nlora_alpha: 16\n", ("bad.yaml is not valid YAML at line", "expected ',' or ']'")),
        ("- lora_r\n- 8\n", ("holds a YAML list, not a mapping", "`field: value` lines")),
        ("lora_rr: 8\n", ("unknown field 'lora_rr' (did you mean 'lora_r'?)",)),
        ("lora_r: 8\nlora_r: 16\n", ("'lora_r' is given twice (line 2): keep one",)),
        (b"lora_r: 8 # \xff\n", ("is not UTF-8 text",)),
    ],
    ids=["invalid-yaml", "a-list", "unknown-key", "duplicate-key", "not-utf8"],
)
def test_malformed_recipe_file(cwd, capsys, text, fragments):
    recipe = cwd / "bad.yaml"
    recipe.write_bytes(text if isinstance(text, bytes) else text.encode())
    _fails(_train(cwd, "--recipe", str(recipe)), capsys, cwd, *fragments)


def test_missing_recipe_file_is_named_as_a_file(cwd, capsys):
    _fails(["prepare", "--recipe", str(cwd / "nope.yaml")], capsys, cwd, "nope.yaml not found", "tiny")


# ------------------------------------------------------------------------------------- --set types


@pytest.mark.parametrize(
    "override, message",
    [
        ("learning_rate=abc", "learning_rate='abc' has the wrong type: expected float"),
        ("packing=maybe", "packing='maybe' has the wrong type: expected bool"),
        ("max_steps=1e3", "max_steps=1000.0 has the wrong type: expected int"),
        ("lora_target_modules=q_proj", "expected a list of str"),
        ("per_device_train_batch_size=true", "per_device_train_batch_size=True has the wrong type"),
        ("lora_target_modules=[q_proj", "the value is not valid YAML"),
        ("max_stepz=3", "--set: unknown field 'max_stepz' (did you mean 'max_steps'?)"),
    ],
)
def test_override_of_the_wrong_type(cwd, capsys, override, message):
    _fails(_train(cwd, "--set", override), capsys, cwd, message)


def test_exponent_numbers_are_numbers():
    # PyYAML alone reads `1e-4` as a string; recipes and --set read it as YAML 1.2 does, a float
    assert parse_overrides(["learning_rate=1e-4", "name='1e-4'"]) == {"learning_rate": 1e-4, "name": "1e-4"}
    assert load_recipe("tiny", parse_overrides(["learning_rate=2e-4"])).learning_rate == 2e-4


# ------------------------------------------------------------------------------------- numeric ranges


@pytest.mark.parametrize(
    "override, message",
    [
        ("gradient_accumulation_steps=0", "gradient_accumulation_steps=0: must be positive"),
        ("tiny_hidden_size=0", "tiny_hidden_size=0: must be positive"),
        ("max_train_docs=-1", "max_train_docs=-1: must be positive"),
        ("max_steps=-5", "max_steps=-5: must be positive, or -1 to train for num_train_epochs"),
        ("max_steps=0", "max_steps=0: must be positive, or -1"),
        ("learning_rate=.inf", "learning_rate=inf: must be positive"),
        ("learning_rate=.nan", "learning_rate=nan: must be positive"),
        ("per_device_train_batch_size=0", "per_device_train_batch_size=0: must be positive"),
        ("warmup_steps=-1", "warmup_steps=-1: must be 0 or more"),
        ("lora_dropout=1.5", "lora_dropout=1.5: must be between 0 and 1"),
        ("spm_rate=-0.1", "spm_rate=-0.1: must be between 0 and 1"),
        ("adam_beta2=1", "adam_beta2=1: must be at least 0 and below 1"),
        ("tiny_hidden_size=60", "tiny_hidden_size=60: must be tiny_num_heads (4) times an even head size"),
        ("tiny_vocab_size=100", "tiny_vocab_size=100: must be at least"),
    ],
)
def test_out_of_range_values_fail_before_any_work(cwd, capsys, override, message):
    _fails(_train(cwd, "--set", override), capsys, cwd, message, "invalid recipe 'tiny'", "fix the recipe")


def test_all_problems_on_one_line(cwd, capsys):
    err = _fails(_train(cwd, "--set", "max_steps=-5", "fim_rate=2"), capsys, cwd)
    assert "max_steps=-5" in err and "fim_rate=2: must be between 0 and 1" in err


def test_max_steps_minus_one_means_epochs():
    assert load_recipe("tiny", {"max_steps": -1}).max_steps == -1  # Trainer's own "use num_train_epochs"


def test_every_numeric_field_has_a_range():
    hints = typing.get_type_hints(TrainConfig)
    numeric = {
        f.name for f in dataclasses.fields(TrainConfig) if {int, float} & set(typing.get_args(hints[f.name]))
    } | {f.name for f in dataclasses.fields(TrainConfig) if hints[f.name] in (int, float)}
    assert numeric - set(NUMERIC_RULES) == set()


# ------------------------------------------------------------------------------------- complete


@pytest.fixture(scope="module")
def tok():
    return build_tiny_tokenizer([PY], vocab_size=400)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tok):
    """RUN/base (a tiny Llama with a 48-token context), RUN/adapter on it, and a dataset folder beside."""
    root = tmp_path_factory.mktemp("hostile")
    run = root / "run"
    build_tiny_model(tok, max_position_embeddings=CONTEXT).save_pretrained(run / "base")
    tok.save_pretrained(run / "base")
    base = AutoModelForCausalLM.from_pretrained(run / "base")  # the adapter records this absolute path
    get_peft_model(base, LoraConfig(r=4)).save_pretrained(run / "adapter")
    (root / "ds" / "data").mkdir(parents=True)
    datasets.Dataset.from_list(ROWS).to_parquet(root / "ds" / "data" / "test-00000-of-00001.parquet")
    return run


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_complete_rejects_non_positive_max_new_tokens(run_dir, cwd, capsys, value):
    argv = ["complete", "--base", str(run_dir / "base"), "--prefix", "def ", "--max-new-tokens", value]
    _fails(argv, capsys, cwd, f"argument --max-new-tokens: must be a positive integer, got '{value}'")


def test_complete_caps_max_new_tokens_at_the_context(run_dir, cwd, capsys, tok, monkeypatch):
    asked = []
    real = training.complete.generate_ids
    monkeypatch.setattr(training.complete, "generate_ids", lambda *a: asked.append(a[4]) or real(*a))
    argv = ["complete", "--base", str(run_dir / "base"), "--prefix", "def add(a, b):\n"]
    assert training_main([*argv, "--max-new-tokens", "1000000"]) == 0
    prompt = 1 + len(tok.encode("def add(a, b):\n", add_special_tokens=False))
    assert asked == [CONTEXT - prompt]
    err = capsys.readouterr().err
    assert f"note: --max-new-tokens 1000000 capped at {CONTEXT - prompt}" in err and "Traceback" not in err
    assert training_main([*argv, "--max-new-tokens", "3"]) == 0 and asked[-1] == 3  # within: untouched


def test_complete_prompt_filling_the_context_is_an_error(run_dir, cwd, capsys):
    argv = ["complete", "--base", str(run_dir / "base"), "--prefix", "€" * 30]  # 3 byte tokens each
    message = f"fills the model's {CONTEXT}-token context"
    _fails(argv, capsys, cwd, message, "shorten the prefix/suffix", after_load=True)


def test_complete_unreadable_prefix_file(run_dir, cwd, capsys):
    (cwd / "head.py").write_bytes(b"\xff\xfe\x00")
    argv = ["complete", "--base", str(run_dir / "base"), "--prefix-file", str(cwd / "head.py")]
    _fails(argv, capsys, cwd, "--prefix-file", "is not UTF-8 text")


# ------------------------------------------------------------------------------------- evaluate


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--context", "0", "argument --context: must be a positive integer, got '0'"),
        ("--stride", "-1", "argument --stride: must be a positive integer"),
        ("--batch-size", "0", "argument --batch-size: must be a positive integer"),
        ("--infill-tasks", "-1", "argument --infill-tasks: must be an integer >= 0"),
        ("--max-new-tokens", "0", "argument --max-new-tokens: must be a positive integer"),
        ("--max-docs", "0", "argument --max-docs: must be a positive integer"),
        ("--prefix-tokens", "x", "argument --prefix-tokens: must be a positive integer, got 'x'"),
        ("--stride", "40", "stride=40 must be between 1 and the context (32)"),
    ],
)
def test_evaluate_rejects_bad_numbers(run_dir, cwd, capsys, flag, value, message):
    argv = ["evaluate", "--base", str(run_dir / "base"), "--dataset", str(run_dir.parent / "ds")]
    _fails([*argv, "--context", "32", flag, value, "--out", str(cwd / "e" / "r.json")], capsys, cwd, message)


def test_evaluate_out_must_be_a_file(run_dir, cwd, capsys):
    (cwd / "e").mkdir()
    argv = ["evaluate", "--base", str(run_dir / "base"), "--dataset", str(run_dir.parent / "ds")]
    _fails([*argv, "--out", str(cwd / "e")], capsys, cwd, "is a folder: pass a file path")


def test_eval_results_hold_no_absolute_local_paths(run_dir, capsys):
    out = run_dir / "eval" / "eval_results.json"
    argv = ["evaluate", "--adapter", str(run_dir / "adapter"), "--dataset", str(run_dir.parent / "ds")]
    argv += ["--out", str(out), "--context", "32", "--infill-tasks", "2", "--max-new-tokens", "2"]
    assert training_main(argv) == 0
    text = out.read_text()
    assert str(run_dir.parent) not in text and "/tmp" not in text
    results = json.loads(text)
    assert results["dataset"]["id"] == "../../ds"
    assert results["models"]["base"]["id"] == "../base"  # the base recorded in adapter_config.json
    assert results["models"]["adapter"]["id"] == "../adapter"
    again = ["--infill-from", str(out.with_name("infilling_tasks.jsonl"))]
    assert (
        training_main([*argv[:-6], "--out", str(run_dir / "eval2" / "r.json"), "--context", "32", *again])
        == 0
    )
    reused = json.loads((run_dir / "eval2" / "r.json").read_text())
    assert reused["settings"]["infill"]["tasks_from"] == "../eval/infilling_tasks.jsonl"


def test_portable_location(tmp_path):
    out = tmp_path / "a" / "b" / "c" / "eval_results.json"
    (tmp_path / "a" / "b" / "c").mkdir(parents=True)
    (tmp_path / "a" / "data").mkdir()
    (tmp_path / "far").mkdir()
    assert portable_location("codellama/CodeLlama-7b-hf", out) == "codellama/CodeLlama-7b-hf"  # Hub id
    assert portable_location(None, out) is None
    assert portable_location(str(tmp_path / "a" / "b" / "c"), out) == "./"
    assert portable_location(str(tmp_path / "a" / "data"), out) == "../../data"
    assert portable_location(str(tmp_path / "far"), out) == "local:far"  # three levels up: the name only


def test_results_with_an_absolute_path_are_rejected():
    results = {
        "schema_version": SCHEMA_VERSION,
        "dataset": {"id": "/home/alice/corpus", "revision": None, "split": "test"},
        "models": {"base": {"id": "org/m", "revision": None}},
        "settings": {},
        "perplexity": {"base": {"overall": {"perplexity": 1.0, "loss": 0.0, "bits_per_byte": 0.0,
                                            "tokens": 1, "bytes": 1, "documents": 1}}},
    }  # fmt: skip
    with pytest.raises(EvalResultsError, match=r"dataset\.id is an absolute local path"):
        validate_results(results)
    results["dataset"]["id"] = "local:corpus"
    validate_results(results)


def test_bad_option_is_one_line(cwd, capsys):
    err = _fails(["train", "--no-such-flag"], capsys, cwd, "unrecognized arguments: --no-such-flag")
    assert "usage:" not in err
