"""The one-command job on the embedded offline default: it runs end to end and its outputs load."""

from __future__ import annotations

import json

import pytest
import yaml

import job as job_module
from samples.make_repos import samples_pins


def test_samples_config_pins_match_the_samples():
    """The embedded corpus recipe pins what samples/make_repos.py builds (re-pin after editing one)."""
    config = yaml.safe_load(job_module.SAMPLES_CONFIG.read_text())
    assert {r["name"]: r["commit"] for r in config["repos"]} == samples_pins()


def test_model_name_follows_the_recipe():
    assert job_module.Job(recipe="codellama-7b-lora").model_name == "flyte-llama-7b-lora"
    assert job_module.Job.embedded().model_name == "flyte-llama-tiny"


def test_repo_ids_take_the_org():
    manifest = {"config": {"hub_repo_id": "unionai-oss/flyte-llama-corpus"}}
    job = job_module.Job(org="me")
    assert job_module.dataset_repo_id(job, manifest) == "me/flyte-llama-corpus"
    assert job_module.model_repo_id(job, manifest) == "me/flyte-llama-7b-lora"
    assert job_module.dataset_repo_id(job_module.Job(), manifest) == "unionai-oss/flyte-llama-corpus"


@pytest.mark.slow
def test_embedded_job_end_to_end(tmp_path):
    import datasets
    from peft import AutoPeftModelForCausalLM

    out, work = tmp_path / "hub", tmp_path / "runs"
    job = job_module.Job.embedded(
        out=out,
        work=work,
        cache_dir=tmp_path / "cache",
        progress=False,
        train_overrides=["max_steps=4", "eval_steps=2", "save_steps=2", "logging_steps=1", "max_eval_docs=8"],
    )
    job.eval_overrides += ["infill_tasks=2", "max_new_tokens=4", "max_docs=6"]
    folders = job_module.run(job)

    ds = datasets.load_dataset(str(folders["dataset"]))
    assert set(ds) == {"train", "validation", "test"}
    assert set(ds["test"]["repo"]) == {"flytesnacks", "flyte-conference-talks"}
    assert not set(ds["train"]["repo"]) & {"flytesnacks", "flyte-conference-talks"}

    # The samples have no public URL: the cards name them without a (dead) link.
    assert "](file://" not in (folders["dataset"] / "README.md").read_text()
    model_dir = folders["model"]
    assert model_dir == out / "flyte-llama-tiny"
    names = {p.name for p in model_dir.iterdir()}
    assert {"README.md", "adapter_config.json", "adapter_model.safetensors", "eval_results.json"} <= names
    assert not {p.name for p in model_dir.rglob("*") if p.suffix in (".bin", ".pt", ".pkl")}
    assert "](file://" not in (model_dir / "README.md").read_text()
    results = json.loads((model_dir / "eval_results.json").read_text())
    assert {"base", "adapter"} <= set(results["perplexity"])

    # The staged model loads the way users will load it (its base is the locally built tiny model).
    model = AutoPeftModelForCausalLM.from_pretrained(str(model_dir))
    assert model.peft_config["default"].r == 8

    # The infilling benchmark is published with the dataset, and anyone can rerun it: same tasks, same scores.
    from model_card.publish import check_folder
    from training.evaluate import evaluate_main

    tasks = datasets.load_dataset(str(folders["dataset"]), "infilling", split="test")
    assert tasks.num_rows == results["infilling"]["adapter"]["overall"]["tasks"] == 2
    assert check_folder(folders["dataset"], "dataset") == []
    rerun = evaluate_main(
        [
            *("--adapter", str(folders["run"] / "adapter"), "--dataset", str(folders["dataset"])),
            *("--infill-from", str(folders["dataset"]), "--max-docs", "6", "--max-new-tokens", "4"),
            *("--context", str(results["settings"]["context_length"]), "--out", str(tmp_path / "re.json")),
        ]
    )
    assert rerun["infilling"]["adapter"] == results["infilling"]["adapter"]
    assert rerun["infilling"]["base"] == results["infilling"]["base"]


def test_a_missing_source_fails_fast_with_the_fix_and_writes_nothing(tmp_path, capsys):
    empty = tmp_path / "mirrors"
    empty.mkdir()
    out = tmp_path / "hub"
    argv = ["--mirrors", str(empty), "--out", str(out), "--work", str(tmp_path / "w"), "--no-progress"]
    code = job_module.main([*argv, "--recipe", "tiny"])  # the default 7B recipe stops earlier on a CPU
    assert code == 2
    err = capsys.readouterr().err
    assert "flyte: no git repo at" in err and "--source flyte=" in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--set", "lora_rr=8"], "unknown field 'lora_rr' (did you mean 'lora_r'?)"),
        (["--eval-set", "infill_task=3"], "unknown evaluation field 'infill_task'"),
        (["--eval-set", "batch_size=0"], "batch_size=0 must be positive"),
    ],
)
def test_every_config_is_checked_before_any_work(tmp_path, capsys, flags, message):
    """A recipe or evaluation typo fails in a second, before the corpus build (no repo is even looked for)."""
    argv = ["--embedded", "--out", str(tmp_path / "hub"), "--work", str(tmp_path / "w"), "--no-progress"]
    assert job_module.main([*argv, *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "w").exists() and not (tmp_path / "hub").exists()


def test_stage_train_refuses_to_overwrite_an_earlier_run(tmp_path):
    """A stage never destroys its input: a finished run in WORK/<recipe> is kept, and the error names it."""
    job = job_module.Job(recipe="tiny", work=tmp_path)
    run_dir = tmp_path / "tiny"
    for name in ("adapter", "checkpoints/checkpoint-2", "eval"):
        (run_dir / name).mkdir(parents=True)
    (run_dir / "adapter" / "adapter_model.safetensors").write_bytes(b"weights")
    with pytest.raises(FileExistsError, match=f"{run_dir} already holds a training run: pass --resume"):
        job_module.stage_train(job, tmp_path / "corpus")
    assert (run_dir / "adapter" / "adapter_model.safetensors").read_bytes() == b"weights"
    assert {p.name for p in run_dir.iterdir()} == {"adapter", "checkpoints", "eval"}
