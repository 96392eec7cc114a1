"""Hostile training runs: resuming a finished run, checkpoints cut short by a kill, published files that
carry this machine's paths or a random order."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_training_data import make_corpus

from training.__main__ import main
from training.modeling import adapter_base
from training.train import checkpoint_problem, portable

ROOT = Path(__file__).resolve().parents[1]
# 30 documents pack into 2 batches an epoch: 5 steps end mid-epoch, where Trainer's resume used to go on.
STEPS = ["--set", "max_steps=5", "save_steps=5", "eval_steps=5", "max_train_docs=30", "logging_steps=1"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("corpus") / "corpus", 60, 6)


def train(corpus, run, *extra, steps=STEPS):
    return main(
        ["train", "--recipe", "tiny", "--dataset", str(corpus), "--output-dir", str(run), *extra, *steps]
    )


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.fixture
def finished(tmp_path, corpus):
    """A run that completed its 5 steps: RUN/checkpoints/checkpoint-5 and RUN/adapter."""
    run = tmp_path / "run"
    assert train(corpus, run) == 0
    assert sorted(p.name for p in (run / "checkpoints").glob("checkpoint-*")) == ["checkpoint-5"]
    return run


@pytest.mark.slow
def test_resuming_a_finished_run_is_a_no_op(finished, corpus, capsys):
    before, files = digests(finished / "adapter"), tree(finished)
    capsys.readouterr()
    assert train(corpus, finished, "--resume") == 0
    out = capsys.readouterr()
    assert "already finished at step 5 (max_steps=5)" in out.out and "raise max_steps" in out.out
    assert "Traceback" not in out.out + out.err
    assert digests(finished / "adapter") == before  # byte for byte
    assert tree(finished) == files  # no checkpoint-6, nothing else written either
    log = json.loads((finished / "adapter" / "training_log.json").read_text())
    assert log["summary"]["global_step"] == 5


@pytest.mark.slow
def test_finished_run_without_its_adapter_exports_it_without_training(finished, corpus, capsys):
    """Killed after the last checkpoint, before RUN/adapter was written: resume writes it, trains nothing."""
    expected = (finished / "adapter" / "adapter_model.safetensors").read_bytes()
    shutil.rmtree(finished / "adapter")
    capsys.readouterr()
    assert train(corpus, finished, "--resume") == 0
    assert "checkpoint-5 finished the run at step 5" in capsys.readouterr().out
    assert (finished / "adapter" / "adapter_model.safetensors").read_bytes() == expected
    log = json.loads((finished / "adapter" / "training_log.json").read_text())
    assert log["summary"]["global_step"] == 5
    assert sorted(p.name for p in (finished / "checkpoints").glob("checkpoint-*")) == ["checkpoint-5"]


def break_checkpoint(run: Path, step: int, *remove: str) -> Path:
    """A copy of the run's last checkpoint as checkpoint-<step>, missing `remove` (what a kill leaves)."""
    ckpts = run / "checkpoints"
    last = max(ckpts.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    broken = ckpts / f"checkpoint-{step}"
    shutil.copytree(last, broken)
    state = json.loads((broken / "trainer_state.json").read_text())
    (broken / "trainer_state.json").write_text(json.dumps({**state, "global_step": step}))
    for name in remove:
        (broken / name).unlink()
    return broken


@pytest.mark.parametrize(
    ("remove", "truncate", "why"),
    [
        (("trainer_state.json", "adapter_model.safetensors"), None, "no readable trainer_state.json"),
        (("optimizer.pt",), None, "no optimizer state"),
        ((), "adapter_model.safetensors", "adapter_model.safetensors is truncated"),
        ((), "optimizer.pt", "optimizer.pt is truncated"),
    ],
)
@pytest.mark.slow
def test_incomplete_checkpoint_is_recognised(finished, remove, truncate, why):
    broken = break_checkpoint(finished, 7, *remove)
    if truncate:
        os.truncate(broken / truncate, (broken / truncate).stat().st_size // 2)
    assert checkpoint_problem(finished / "checkpoints" / "checkpoint-5") is None
    assert checkpoint_problem(broken) == why


@pytest.mark.slow
def test_resume_skips_an_incomplete_checkpoint_and_removes_it(finished, corpus, capsys):
    broken = break_checkpoint(finished, 8, "trainer_state.json", "adapter_model.safetensors")
    capsys.readouterr()
    steps = [*STEPS[:-5], "max_steps=8", "save_steps=8", "eval_steps=8", "max_train_docs=30"]
    assert train(corpus, finished, "--resume", steps=steps) == 0
    out = capsys.readouterr()
    assert "checkpoint-8 (no readable trainer_state.json); removed it, resuming from checkpoint-5" in out.out
    assert "Traceback" not in out.out + out.err
    log = json.loads((finished / "adapter" / "training_log.json").read_text())
    assert log["summary"]["global_step"] == 8  # 5 resumed + 3 trained, not a restart
    assert [r["step"] for r in log["log_history"] if "loss" in r][:5] == [1, 2, 3, 4, 5]
    assert checkpoint_problem(broken) is None  # the new checkpoint-8 is a complete one


@pytest.mark.slow
def test_fresh_start_over_only_incomplete_checkpoints(tmp_path, finished, corpus, capsys):
    run = tmp_path / "again"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copytree(finished / "checkpoints" / "checkpoint-5", run / "checkpoints" / "checkpoint-5")
    (run / "checkpoints" / "checkpoint-5" / "trainer_state.json").unlink()
    capsys.readouterr()
    assert train(corpus, run) == 0  # before: "already has checkpoint-5: pass --resume"
    assert (
        "checkpoint-5 (no readable trainer_state.json); removed it, starting afresh"
        in capsys.readouterr().out
    )
    assert checkpoint_problem(run / "checkpoints" / "checkpoint-5") is None
    assert sorted(p.name for p in run.iterdir()) == ["adapter", "base", "checkpoints"]


@pytest.mark.slow
def test_resume_with_only_incomplete_checkpoints_is_a_clear_error(tmp_path, finished, corpus, capsys):
    run = tmp_path / "again"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copytree(finished / "checkpoints" / "checkpoint-5", run / "checkpoints" / "checkpoint-5")
    (run / "checkpoints" / "checkpoint-5" / "rng_state.pth").unlink()
    files = tree(run)
    capsys.readouterr()
    assert train(corpus, run, "--resume") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --resume: no checkpoint under") and err.count("error:") == 1
    assert "to resume from, only incomplete ones: checkpoint-5 (no RNG state); drop --resume" in err
    assert "Traceback" not in err
    assert tree(run) == files  # an error changes nothing


@pytest.mark.slow
def test_published_files_carry_no_absolute_local_paths(finished, corpus):
    adapter = finished / "adapter"
    for name in ("training_log.json", "recipe.yaml"):
        text = (adapter / name).read_text()
        assert str(finished) not in text and str(corpus) not in text and str(ROOT) not in text, name
    assert not (adapter / "README.md").exists()  # PEFT's template README named the base by its local path
    log = json.loads((adapter / "training_log.json").read_text())
    assert log["summary"]["dataset"]["id"] == os.path.relpath(corpus, finished)  # "../../corpus0/corpus"
    assert log["summary"]["dataset"]["id"].startswith("../")
    assert "\ndataset_name: ../" in (adapter / "recipe.yaml").read_text()
    config = json.loads((adapter / "adapter_config.json").read_text())
    # The one local path kept: PEFT's loaders resolve a relative base against the working directory, so
    # RUN/adapter/ loads from anywhere; staging rewrites it, push refuses it (tests/test_hostile_publish.py).
    assert config["base_model_name_or_path"] == str((finished / "base").resolve())
    assert adapter_base(adapter) == (str((finished / "base").resolve()), None)
    # Far away (or via a top-level folder, which would name other users' folders): the name only.
    assert portable(str(Path.home()), finished) == f"local:{Path.home().name}"
    assert portable("codellama/CodeLlama-7b-hf", finished) == "codellama/CodeLlama-7b-hf"


@pytest.mark.slow
def test_adapter_config_is_byte_reproducible(tmp_path, finished, corpus):
    config = json.loads((finished / "adapter" / "adapter_config.json").read_text())
    assert config["target_modules"] == sorted(config["target_modules"]) and len(config["target_modules"]) == 7
    again = tmp_path / "again"
    assert train(corpus, again) == 0
    first = _without_run_path(finished)
    assert _without_run_path(again) == first


def _without_run_path(run: Path) -> bytes:
    """adapter_config.json's bytes with the run's own folder (its local base lives there) factored out."""
    return (run / "adapter" / "adapter_config.json").read_bytes().replace(str(run.resolve()).encode(), b"RUN")


@pytest.mark.slow
def test_adapter_config_is_byte_reproducible_across_hash_seeds(tmp_path, corpus):
    """PEFT keeps target_modules in a set, whose order depends on PYTHONHASHSEED: two processes."""
    outputs = []
    for seed in ("1", "2"):
        run = tmp_path / f"run{seed}"
        cmd = [sys.executable, "-m", "training", "train", "--recipe", "tiny", "--dataset", str(corpus)]
        cmd += ["--output-dir", str(run), "--set", "max_steps=2", "save_steps=2", "eval_steps=2"]
        cmd += ["max_train_docs=30"]
        env = {**os.environ, "PYTHONHASHSEED": seed, "OMP_NUM_THREADS": "1"}
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
        assert out.returncode == 0, out.stderr[-3000:]
        outputs.append(_without_run_path(run))
    assert outputs[0] == outputs[1]
