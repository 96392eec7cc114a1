"""The job as a Flyte workflow: runs locally end to end, caches, keeps the Hub token secret.

Needs the `flyte` extra (`pip install -e ".[flyte]"`; CI installs it); without it this module is skipped, so
the rest of the suite still runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("flytekit")
pytest.importorskip("flytekitplugins.kfpytorch")

from flytekit.configuration import Config
from flytekit.core import data_persistence, local_cache
from flytekit.core.python_function_task import PythonFunctionTask
from flytekitplugins.kfpytorch import Elastic

import job as job_module
import workflows

ROOT = Path(__file__).resolve().parents[1]
SECRET = "hf_FAKE_" + os.urandom(12).hex()  # a value that can only come from the secret
SMALL_TRAIN = ["max_steps=4", "eval_steps=2", "save_steps=2", "logging_steps=1", "max_eval_docs=8"]
SMALL_EVAL = ["infill_tasks=2", "max_new_tokens=4", "max_docs=6"]


@pytest.mark.slow
def test_flytekit_stays_an_optional_extra():
    """Nothing but workflows.py imports flytekit: every other module of the project loads without it."""
    code = """
import importlib, pkgutil, sys
at_start = set(sys.modules)  # flytekitplugins' -nspkg.pth puts an empty namespace there at startup
import job, push
for pkg in ("dataset_builder", "training", "model_card", "samples"):
    mod = importlib.import_module(pkg)
    for info in pkgutil.walk_packages(mod.__path__, pkg + "."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
leaked = sorted(m for m in set(sys.modules) - at_start if m.startswith("flytekit"))
assert not leaked, leaked
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_image_installs_git_for_the_corpus_builder():
    # the pins themselves: tests/test_constraints.py::test_the_image_installs_exactly_the_pins
    assert "git" in workflows.IMAGE.apt_packages  # the corpus builder shells out to git


def eight_gpu_recipe(folder: Path) -> str:
    """codellama-7b-lora asking Flyte for a node of 8 GPUs (the recipes default to one GPU; `gpus` changes
    the resources, not the schedule)."""
    text = (ROOT / "training" / "recipes" / "codellama-7b-lora.yaml").read_text()
    assert "\ngpus: 1\n" in text
    path = folder / "codellama-7b-lora-8gpu.yaml"
    path.write_text(text.replace("\ngpus: 1\n", "\ngpus: 8\n"))
    return str(path)


def test_every_recipe_has_hardware_and_multi_gpu_recipes_train_elastic(tmp_path):
    from training.config import recipe_dict

    def is_train_recipe(name: str) -> bool:
        try:
            recipe_dict(name)  # mini-pretrain, say, is a recipe of training/pretrain.py, not of training
        except ValueError:
            return False
        return True

    recipes = sorted(
        p.stem for p in (ROOT / "training" / "recipes").glob("*.yaml") if is_train_recipe(p.stem)
    )
    assert {"tiny", "codellama-7b-lora", "codellama-7b-qlora"} <= set(recipes)
    assert workflows.trainer_for("tiny") is workflows.train
    assert workflows.hardware("tiny").train_resources().gpu is None  # CPU only
    assert workflows.hardware("codellama-7b-qlora").train_resources().gpu == 1
    assert workflows.trainer_for("codellama-7b-qlora") is workflows.train

    multi = [r for r in [*recipes, eight_gpu_recipe(tmp_path)] if workflows.hardware(r).gpus > 1]
    assert multi, "no recipe exercises the multi-GPU path"
    for recipe in multi:
        trainer = workflows.trainer_for(recipe)
        assert isinstance(trainer.task_config, Elastic)
        assert trainer.task_config.nproc_per_node == workflows.hardware(recipe).gpus == 8
        assert trainer.task_config.nnodes == 1
    assert workflows.train.task_config is None  # the single-process task is a plain python task


def test_only_the_publish_task_requests_the_secret_and_publishing_is_off_by_default():
    tasks = {n: t for n, t in vars(workflows).items() if isinstance(t, PythonFunctionTask)}
    with_secrets = {n for n, t in tasks.items() if t.security_context and t.security_context.secrets}
    assert with_secrets == {"push_to_hub"}
    (secret,) = workflows.push_to_hub.security_context.secrets
    assert (secret.group, secret.key) == ("huggingface", "token")

    inputs = workflows.flyte_llama.python_interface.inputs_with_defaults
    assert inputs["publish"] == (bool, False)
    names = {*inputs, *(n for t in tasks.values() for n in t.python_interface.inputs)}
    assert not {n for n in names if "token" in n or "secret" in n}, "the token must never be an input"


def test_publish_without_the_secret_says_how_to_add_it(tmp_path, monkeypatch):
    for name in ("_FSEC_HUGGINGFACE_TOKEN", "HUGGINGFACE_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FLYTE_SECRETS_DEFAULT_DIR", str(tmp_path / "secrets"))
    folder = workflows.FlyteDirectory(str(tmp_path))
    with pytest.raises(Exception, match="create the Flyte secret huggingface/token"):
        workflows.push_to_hub(spec=workflows.JobSpec(), dataset=folder, model=folder)


def test_plan_keys_change_with_a_pin_and_with_a_recipe_override(tmp_path):
    """The cache keys: editing one pin (or the recipe) must miss the cache; the same inputs must hit it."""
    text = job_module.SAMPLES_CONFIG.read_text()
    pin = "dd263e6991d7907c1c3d520a189be7861d88a4f5"
    assert pin in text
    edited = tmp_path / "samples.yaml"
    edited.write_text(text.replace(pin, "a" * 40))

    def plan(corpus_config: str, overrides: list[str]) -> workflows.Plan:
        return workflows.plan(
            recipe=None,
            corpus_config=corpus_config,
            mirrors=None,
            org=None,
            embedded=True,
            train_overrides=overrides,
            eval_overrides=[],
        )

    base = plan("samples", [])
    assert plan("samples", []) == base
    assert plan(str(edited), []).config_sha256 != base.config_sha256
    assert plan(str(edited), []).recipe_sha256 == base.recipe_sha256
    assert plan("samples", ["max_steps=3"]).recipe_sha256 != base.recipe_sha256
    assert base.spec.recipe is None and base.corpus_version == "0.1.0"
    with pytest.raises(Exception, match="unknown field 'max_step'"):
        plan("samples", ["max_step=3"])  # a typo fails in the planning task, before any work


# --- end to end ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """The workflow run twice with the same inputs, publishing to a fake Hub, with a fake secret set."""
    tmp = tmp_path_factory.mktemp("flyte")
    calls: dict[str, int] = {"corpus": 0, "train": 0, "evaluate": 0}
    pushes: list[dict] = []

    def counted(name, fn):
        def wrapper(*args, **kw):
            calls[name] += 1
            return fn(*args, **kw)

        return wrapper

    def fake_publish(folder, repo_id, kind, *, tag=None, **kw):
        pushes.append({"kind": kind, "repo_id": repo_id, "tag": tag, "token": os.environ.get("HF_TOKEN")})
        return SimpleNamespace(problems=[])

    from dataset_builder import config as corpus_config
    from model_card import publish

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(local_cache, "CACHE_LOCATION", str(tmp / "local-cache"))  # not ~/.flyte/local-cache
        mp.setattr(local_cache.LocalTaskCache, "_initialized", False)
        mp.setattr(corpus_config, "DEFAULT_CACHE", tmp / "corpus-cache")
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.delenv("HF_TOKEN", raising=False)
        mp.setenv("_FSEC_HUGGINGFACE_TOKEN", SECRET)
        mp.setattr(publish, "publish", fake_publish)
        for stage in ("corpus", "train", "evaluate"):
            mp.setattr(job_module, f"stage_{stage}", counted(stage, getattr(job_module, f"stage_{stage}")))

        runs, counts = [], []
        for _ in range(2):
            kw = dict(org="test-org", train_overrides=SMALL_TRAIN, eval_overrides=SMALL_EVAL, publish=True)
            runs.append(workflows.flyte_llama(**kw))
            counts.append(dict(calls))  # stage calls so far
        token_left = os.environ.get("HF_TOKEN")
    local_cache.LocalTaskCache._initialized = False  # the next user opens the default cache again
    return {
        "runs": runs,
        "counts": counts,
        "pushes": pushes,
        "token_left": token_left,
        "tmp": tmp,
    }


@pytest.mark.slow
def test_workflow_runs_end_to_end_and_its_outputs_load(two_runs):
    import datasets
    from peft import AutoPeftModelForCausalLM

    out = two_runs["runs"][0]
    ds = datasets.load_dataset(out.dataset.path)
    assert set(ds) == {"train", "validation", "test"}
    assert set(ds["test"]["repo"]) == {"flytesnacks", "flyte-conference-talks"}

    model = AutoPeftModelForCausalLM.from_pretrained(str(Path(out.run.path) / "adapter"))
    assert model.peft_config["default"].r == 8  # the tiny recipe's LoRA rank
    summary = json.loads((Path(out.run.path) / "adapter" / "training_log.json").read_text())["summary"]
    assert summary["global_step"] == 4  # the overrides reached the training stage

    results = json.loads((Path(out.eval.path) / "eval_results.json").read_text())
    assert {"base", "adapter"} <= set(results["perplexity"])
    assert results["infilling"]["adapter"]["overall"]["tasks"] == 2  # the evaluation options too

    names = {p.name for p in Path(out.model.path).iterdir()}
    assert {"README.md", "adapter_config.json", "adapter_model.safetensors", "eval_results.json"} <= names
    assert "test-org/flyte-llama-tiny" in (Path(out.model.path) / "README.md").read_text()

    # The published dataset = the corpus + the evaluation's infilling tasks; the cached corpus is untouched.
    tasks = datasets.load_dataset(out.hub_dataset.path, "infilling", split="test")
    assert tasks.num_rows == 2
    assert not (Path(out.dataset.path) / "infilling").exists()
    assert datasets.load_dataset(out.hub_dataset.path)["test"].num_rows == ds["test"].num_rows


@pytest.mark.slow
def test_second_run_hits_the_cache(two_runs):
    after_first, after_second = two_runs["counts"]
    assert after_first == {"corpus": 1, "train": 1, "evaluate": 1}
    assert after_second == after_first, "the second run did the work again instead of hitting the cache"
    first, second = two_runs["runs"]
    assert (second.dataset.path, second.run.path, second.eval.path) == (
        first.dataset.path,
        first.run.path,
        first.eval.path,
    )


@pytest.mark.slow
def test_the_token_reaches_only_the_push_and_appears_in_no_input_or_output(two_runs):
    pushes = two_runs["pushes"]
    assert [p["kind"] for p in pushes] == ["dataset", "model"] * 2  # publish=True pushed both, twice
    assert all(p["token"] == SECRET for p in pushes)  # the secret became HF_TOKEN for the push
    assert pushes[1]["repo_id"] == "test-org/flyte-llama-tiny"
    assert all(p["tag"] and p["tag"].startswith("v") for p in pushes)
    assert two_runs["token_left"] is None  # ...and only while the push ran

    # Every byte the runs wrote: flytekit's local sandbox (every task's working dir and outputs), its raw
    # output store, the local cache (input keys and output literals of the cached tasks), the corpus cache.
    roots = [Path(Config.auto().local_sandbox_path), Path(data_persistence.flyte_tmp_dir), two_runs["tmp"]]
    for out in two_runs["runs"]:
        for folder in out:
            assert any(Path(folder.path).is_relative_to(root) for root in roots), folder.path
    needle = SECRET.encode()
    scanned = 0
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                assert needle not in path.read_bytes(), f"the secret leaked into {path}"
                scanned += 1
    assert scanned > 100
    assert SECRET not in repr(two_runs["runs"])


def test_serialised_training_tasks_launch_one_process_per_gpu_of_the_recipe(monkeypatch, tmp_path):
    """What reaches a cluster is the serialised task: a pod imports the module named in its container args
    and runs that task's own Elastic config (kfpytorch serialises none for nnodes=1), so the process count
    must be the imported task's, not a with_overrides of the registering process."""
    import importlib
    from collections import OrderedDict

    from flytekit.configuration import ImageConfig, SerializationSettings
    from flytekit.tools.translator import get_serializable

    settings = SerializationSettings(
        image_config=ImageConfig.auto_default_image(), project="p", domain="d", version="v"
    )
    eight = eight_gpu_recipe(tmp_path)
    for recipe in ("tiny", "mini-lora", "codellama-7b-qlora", "codellama-7b-lora", eight):
        hw = workflows.hardware(recipe)
        spec = get_serializable(OrderedDict(), settings, workflows.trainer_for(recipe))
        args = spec.template.container.args
        module, name = args[args.index("task-module") + 1], args[args.index("task-name") + 1]
        resolved = getattr(importlib.import_module(module), name)  # what the pod runs
        launched = resolved.task_config.nproc_per_node if isinstance(resolved.task_config, Elastic) else 1
        assert launched == max(hw.gpus, 1), (recipe, name)
        assert (hw.train_resources().gpu or 0) == hw.gpus
    assert workflows.trainer_for(eight).name == "workflows.train_8_gpus"
    assert workflows.trainer_for("codellama-7b-lora").name == "workflows.train"  # one GPU by default
    monkeypatch.setattr(workflows, "hardware", lambda recipe: workflows.Hardware(gpus=3, cpu="8", mem="32Gi"))
    with pytest.raises(ValueError, match="define train_3_gpus"):
        workflows.trainer_for("odd")
