"""The whole Flyte Llama job as one Flyte workflow: locally by default, on a Flyte cluster at scale.

    pyflyte run workflows.py flyte_llama                        # offline demo: sample repos, tiny recipe
    pyflyte run workflows.py flyte_llama --recipe tiny --train_overrides '["max_steps=4"]'
    pyflyte run --remote workflows.py flyte_llama --no-embedded --org ORG --publish   # the real job

Booleans are flags (`--embedded/--no-embedded`, `--publish/--no-publish`): flytekit 1.16 rejects
`--embedded false`. tests/test_documented_commands.py parses every documented `pyflyte` line.

Each task calls a stage function of job.py (corpus → train → evaluate → cards → push); nothing here repeats
their logic. What this file adds is what a cluster needs: cache keys, resources per recipe, a multi-GPU
(torch elastic) training task, the Hub token as a Flyte secret, and the container image. docs/FLYTE.md says
how to run it. flytekit is the optional `flyte` extra: no other module of the project imports it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from flytekit import (
    Cache,
    Deck,
    ImageSpec,
    Resources,
    Secret,
    conditional,
    current_context,
    dynamic,
    task,
    workflow,
)
from flytekit.core.python_function_task import PythonFunctionTask
from flytekit.types.directory import FlyteDirectory
from flytekitplugins.kfpytorch import Elastic

# `pyflyte run` puts this folder on sys.path only while it loads this file, but the stages import the
# project's modules lazily, later: import the (cheap) package roots now so those imports still resolve
# when the project is not pip-installed.
import dataset_builder  # noqa: F401
import job as job_module
import model_card  # noqa: F401
import push  # noqa: F401
import samples  # noqa: F401
import training  # noqa: F401

ROOT = Path(__file__).resolve().parent

# Bump when a change to the code (not to a config or recipe) changes what a cached task would produce:
# Flyte then recomputes instead of serving the old outputs.
CACHE_VERSION = "1"

# The Hub token lives in a Flyte secret, requested by the publish task only (docs/FLYTE.md shows how to create
# it). Locally, flytekit reads it from the env var HUGGINGFACE_TOKEN (or _FSEC_HUGGINGFACE_TOKEN) or from
# /etc/secrets/huggingface/token.
HF_SECRET_GROUP = "huggingface"
HF_SECRET_KEY = "token"


# --- the container image ------------------------------------------------------------------------------------
# constraints.txt pins every distribution the project and its image extras install (`make constraints`
# writes it with uv; the README's install uses the same file). flytekit hashes the file into the image tag
# and installs its lines as they are, so one tag always holds the same versions. Its torch is PyPI's Linux
# wheel (CUDA).
CONSTRAINTS = ROOT / "constraints.txt"

# Only built by `pyflyte run --remote` / `pyflyte register`; local runs use the current virtualenv.
# git: the corpus builder reads repos with it.
IMAGE = ImageSpec(
    name="flyte-llama",
    python_version="3.11",  # the Python constraints.txt was resolved for
    requirements=str(CONSTRAINTS),
    apt_packages=["git"],
    registry=os.environ.get("FLYTE_LLAMA_REGISTRY", "localhost:30000"),  # the flytectl demo's registry
)


# --- resources per recipe -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Hardware:
    """What a recipe's training needs from a node. More than one GPU → torch elastic, a process per GPU."""

    gpus: int
    cpu: str
    mem: str

    def train_resources(self) -> Resources:
        return Resources(cpu=self.cpu, mem=self.mem, gpu=self.gpus or None)

    def eval_resources(self) -> Resources:
        # Evaluation is a single process: it uses one GPU at most.
        return Resources(cpu=self.cpu, mem=self.mem, gpu=min(self.gpus, 1) or None)


SMALL = Resources(cpu="1", mem="2Gi")  # planning, cards, publishing


def hardware(recipe: str) -> Hardware:
    """The recipe's own `gpus`, `cpus` and `memory` fields (training/config.py), read without building the
    full config: a GPU recipe must be plannable on a CPU-only machine that registers the workflow."""
    from training.config import TrainConfig, recipe_dict

    data = recipe_dict(recipe)
    fields = TrainConfig.__dataclass_fields__
    value = {name: data.get(name, fields[name].default) for name in ("gpus", "cpus", "memory")}
    return Hardware(gpus=int(value["gpus"]), cpu=str(value["cpus"]), mem=str(value["memory"]))


# --- the job's parameters, as the tasks see them ------------------------------------------------------------
@dataclass
class JobSpec:
    """The workflow's inputs, carried to every task; `make_job` turns them into a job.Job."""

    recipe: str | None = None  # None: tiny when embedded, else codellama-7b-lora (as job.py)
    corpus_config: str | None = None  # "samples", "default" (corpus.yaml) or a YAML path
    mirrors: str | None = None  # local git dirs instead of GitHub
    org: str | None = None  # Hub namespace
    embedded: bool = True  # Job.embedded(): the offline demo's defaults and its small evaluation
    train_overrides: list[str] = field(default_factory=list)
    eval_overrides: list[str] = field(default_factory=list)


def make_job(spec: JobSpec, root: Path) -> job_module.Job:
    """The job.py Job that `spec` describes, writing under `root` (the same rules as `python job.py`)."""
    common = dict(
        mirrors=Path(spec.mirrors) if spec.mirrors else None,
        org=spec.org,
        out=root / "hub",
        work=root / "work",
        train_overrides=list(spec.train_overrides),
        eval_overrides=list(spec.eval_overrides),
        progress=False,  # progress bars only clutter task logs
    )
    corpus_config = None
    if spec.corpus_config == "samples":
        corpus_config = job_module.SAMPLES_CONFIG
    elif spec.corpus_config and spec.corpus_config != "default":
        corpus_config = Path(spec.corpus_config).resolve()
    job = job_module.Job.create(
        embedded=spec.embedded, recipe=spec.recipe, corpus_config=corpus_config, **common
    )
    if spec.corpus_config == "default":  # corpus.yaml even for the embedded demo's other defaults
        job.corpus_config = None
    return job


def _workdir(stage: str) -> Path:
    """A fresh folder for this task's files inside Flyte's working directory."""
    return Path(tempfile.mkdtemp(prefix=f"{stage}-", dir=current_context().working_directory))


def _sha256(data: object) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


@contextlib.contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    """Set an environment variable for the block only (local runs share one process across tasks)."""
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


# --- tasks --------------------------------------------------------------------------------------------------
class Plan(NamedTuple):
    spec: JobSpec
    corpus_version: str
    config_sha256: str
    recipe_sha256: str
    eval_overrides: list[str]


@task(container_image=IMAGE, requests=SMALL)
def plan(
    recipe: str | None,
    corpus_config: str | None,
    mirrors: str | None,
    org: str | None,
    embedded: bool,
    train_overrides: list[str],
    eval_overrides: list[str],
) -> Plan:
    """Resolve the configs and compute the cache keys. Never cached: it must see an edited config or recipe.

    Also validates the recipe and corpus config before any real work starts (a typo fails in seconds).
    """
    from dataset_builder.config import load_config
    from training.config import parse_overrides, recipe_dict

    spec = JobSpec(
        recipe=recipe,
        corpus_config=corpus_config,
        mirrors=mirrors,
        org=org,
        embedded=embedded,
        train_overrides=train_overrides,
        eval_overrides=eval_overrides,
    )
    job = make_job(spec, Path("."))
    corpus = load_config(job.corpus_config, job_module.corpus_overrides(job))
    recipe_data = recipe_dict(job.recipe, parse_overrides(job.train_overrides))
    # config_sha256 covers the corpus version, every pin and every threshold; the recipe hash covers the
    # recipe file's values and the overrides. These are the cache keys of the corpus and the training.
    return Plan(spec, corpus.version, corpus.config_sha256, _sha256(recipe_data), job.eval_overrides)


@task(
    container_image=IMAGE,
    # Keyed on the corpus version + config hash only: the same config gives the same rows wherever the
    # repos are read from (GitHub or mirrors), so how they were reached (spec) is not part of the key.
    cache=Cache(version=CACHE_VERSION, ignored_inputs=("spec",)),
    requests=Resources(cpu="4", mem="16Gi"),
)
def build_corpus(spec: JobSpec, corpus_version: str, config_sha256: str) -> FlyteDirectory:
    """job.stage_corpus: the Hub-layout dataset folder (docs/ARCHITECTURE.md §2)."""
    dataset_dir, manifest = job_module.stage_corpus(make_job(spec, _workdir("corpus")))
    if manifest["config_sha256"] != config_sha256 or manifest["version"] != corpus_version:
        # The cache would file these rows under the wrong key: refuse rather than poison it.
        raise RuntimeError(
            f"the corpus was built from config {manifest['config_sha256']} v{manifest['version']} but "
            f"planned as {config_sha256} v{corpus_version}: was the config edited during the run? Run again."
        )
    return FlyteDirectory(str(dataset_dir))


def _train(spec: JobSpec, dataset: FlyteDirectory) -> FlyteDirectory:
    run_id = os.environ.get("TORCHELASTIC_RUN_ID")
    if run_id:
        # Torch elastic workers are fresh processes, each with its own Flyte working directory, but all
        # ranks must share one RUN folder (rank 0 builds a local base and saves the adapter). Their parent,
        # the elastic agent, is the one thing they have in common.
        root = Path(tempfile.gettempdir()) / f"flyte-llama-{run_id}-{os.getppid()}"
        root.mkdir(exist_ok=True)
    else:
        root = _workdir("train")
    run_dir = job_module.stage_train(make_job(spec, root), Path(dataset.download()))
    if os.environ.get("RANK", "0") == "0":  # kfpytorch shows rank 0's decks; the others have no log
        training_deck(run_dir)
    return FlyteDirectory(str(run_dir))


def training_deck(run_dir: Path) -> Deck | None:
    """The `training` Deck of the task's page: train and validation loss vs step, from the adapter's
    training_log.json (Trainer's log_history); None when the log has no loss."""
    from model_card.plots import loss_curve_html

    log = json.loads((run_dir / "adapter" / "training_log.json").read_text())
    html = loss_curve_html(log.get("log_history") or [])
    return Deck("training", html) if html else None


# Training is keyed on the corpus (config hash) + the recipe (values + overrides); the dataset folder's
# location and the rest of the spec (org, evaluation settings) do not change the adapter.
_TRAIN_CACHE = Cache(version=CACHE_VERSION, ignored_inputs=("spec", "dataset"))


# enable_deck: the loss curve (training_deck) is on the task's page in the Flyte console.
@task(container_image=IMAGE, cache=_TRAIN_CACHE, enable_deck=True)
def train(spec: JobSpec, dataset: FlyteDirectory, config_sha256: str, recipe_sha256: str) -> FlyteDirectory:
    """job.stage_train in one process (CPU or one GPU): the RUN folder (RUN/adapter is the result)."""
    return _train(spec, dataset)


def elastic_config(gpus: int) -> Elastic:
    return Elastic(nnodes=1, nproc_per_node=gpus, increase_shared_mem=False)


def _elastic(gpus: int):
    """The task decorator of `train_<gpus>_gpus`: job.stage_train as one process per GPU of a node (torch
    elastic); the result is rank 0's RUN folder. The process count is fixed where the task is defined,
    because that is what a pod runs: with nnodes=1 kfpytorch serialises no config, the pod re-imports this
    module and launches the task's own `nproc_per_node`, so `with_overrides(task_config=...)` would change
    only the registering process's object (flytekit 1.16; tests/test_workflows.py checks serialised tasks)."""
    return task(
        container_image=IMAGE,
        cache=_TRAIN_CACHE,
        # The Trainer sees RANK/WORLD_SIZE and runs data-parallel; nnodes>1 would need the kubeflow operator.
        task_config=elastic_config(gpus),
        shared_memory=True,  # workers exchange tensors through /dev/shm, which is tiny in a default pod
        enable_deck=True,  # rank 0's loss curve (training_deck)
    )


@_elastic(2)
def train_2_gpus(
    spec: JobSpec, dataset: FlyteDirectory, config_sha256: str, recipe_sha256: str
) -> FlyteDirectory:
    return _train(spec, dataset)


@_elastic(4)
def train_4_gpus(
    spec: JobSpec, dataset: FlyteDirectory, config_sha256: str, recipe_sha256: str
) -> FlyteDirectory:
    return _train(spec, dataset)


@_elastic(8)
def train_8_gpus(
    spec: JobSpec, dataset: FlyteDirectory, config_sha256: str, recipe_sha256: str
) -> FlyteDirectory:
    return _train(spec, dataset)


# One elastic task per process count (flytekit needs module-level functions); trainer_for refuses others.
MULTI_GPU_TRAINERS = {2: train_2_gpus, 4: train_4_gpus, 8: train_8_gpus}
MULTI_GPU_COUNTS = tuple(MULTI_GPU_TRAINERS)


@task(
    container_image=IMAGE,
    cache=Cache(version=CACHE_VERSION, ignored_inputs=("spec", "dataset", "run")),
)
def evaluate(
    spec: JobSpec,
    dataset: FlyteDirectory,
    run: FlyteDirectory,
    config_sha256: str,
    recipe_sha256: str,
    eval_overrides: list[str],
) -> FlyteDirectory:
    """job.stage_evaluate: RUN/eval/ with eval_results.json and the infilling tasks it names."""
    job = make_job(spec, _workdir("evaluate"))
    # Evaluate a copy: locally a task input is the producing task's own folder, and writing RUN/eval into
    # it would change a cached output. Checkpoints are not needed, so they are not copied.

    src, run_dir = Path(run.download()), job.work / "run"
    shutil.copytree(src / "adapter", run_dir / "adapter")
    if (src / "base").is_dir():
        # A locally built base (tiny recipe): adapter_config.json records the training pod's path to it.
        shutil.copytree(src / "base", run_dir / "base")
        job.eval_overrides += [f"base={run_dir / 'base'}"]
    eval_results = job_module.stage_evaluate(job, Path(dataset.download()), run_dir)
    return FlyteDirectory(str(eval_results.parent))


class FineTuned(NamedTuple):
    run: FlyteDirectory
    eval: FlyteDirectory


def trainer_for(recipe: str) -> PythonFunctionTask:
    """The training task for a recipe: `train`, or the elastic `train_<n>_gpus` when it asks for n > 1."""
    gpus = hardware(recipe).gpus
    if gpus <= 1:
        return train
    if gpus not in MULTI_GPU_TRAINERS:
        raise ValueError(
            f"recipe {recipe!r} asks for {gpus} GPUs; workflows.py has training tasks for "
            f"{', '.join(map(str, MULTI_GPU_COUNTS))}: define train_{gpus}_gpus there like train_8_gpus"
        )
    return MULTI_GPU_TRAINERS[gpus]


@dynamic(container_image=IMAGE, requests=SMALL)
def fine_tune(
    spec: JobSpec, dataset: FlyteDirectory, config_sha256: str, recipe_sha256: str, eval_overrides: list[str]
) -> FineTuned:
    """Train and evaluate on the recipe's hardware (dynamic: the recipe is only known at run time)."""
    job = make_job(spec, Path("."))  # only its resolved recipe name is used here
    hw = hardware(job.recipe)
    overrides = dict(requests=hw.train_resources(), limits=hw.train_resources())
    run = trainer_for(job.recipe)(
        spec=spec, dataset=dataset, config_sha256=config_sha256, recipe_sha256=recipe_sha256
    ).with_overrides(**overrides)
    results = evaluate(
        spec=spec,
        dataset=dataset,
        run=run,
        config_sha256=config_sha256,
        recipe_sha256=recipe_sha256,
        eval_overrides=eval_overrides,
    ).with_overrides(requests=hw.eval_resources(), limits=hw.eval_resources())
    return FineTuned(run=run, eval=results)


def _manifest(dataset_dir: Path) -> dict:
    return json.loads((dataset_dir / "manifest.json").read_text())


class Staged(NamedTuple):
    dataset: FlyteDirectory  # the Hub dataset repo as published: the corpus + its `infilling` config
    model: FlyteDirectory  # the Hub model repo


@task(container_image=IMAGE, requests=SMALL)
def stage_model(
    spec: JobSpec, dataset: FlyteDirectory, run: FlyteDirectory, results: FlyteDirectory
) -> Staged:
    """job.stage_cards: the Hub model folder (adapter, model card, plots, eval results) and the Hub dataset
    folder with the evaluation's infilling tasks added as a config."""
    root = _workdir("cards")
    corpus_dir = Path(dataset.download())  # a cached output of build_corpus: stage_cards writes new folders
    eval_dir = Path(results.download())
    dataset_dir, model_dir = job_module.stage_cards(
        make_job(spec, root),
        Path(run.download()),
        eval_dir / "eval_results.json",
        corpus_dir,
        _manifest(corpus_dir),
    )
    return Staged(dataset=FlyteDirectory(str(dataset_dir)), model=FlyteDirectory(str(model_dir)))


@task(
    container_image=IMAGE,
    requests=SMALL,
    secret_requests=[Secret(group=HF_SECRET_GROUP, key=HF_SECRET_KEY)],
)
def push_to_hub(spec: JobSpec, dataset: FlyteDirectory, model: FlyteDirectory) -> None:
    """job.stage_push: both folders to the Hub, one commit each, tagged with the corpus version."""
    try:
        token = current_context().secrets.get(HF_SECRET_GROUP, HF_SECRET_KEY).strip()
    except ValueError:
        raise RuntimeError(
            f"no Hugging Face token: create the Flyte secret {HF_SECRET_GROUP}/{HF_SECRET_KEY} "
            "(docs/FLYTE.md); for a local run set HUGGINGFACE_TOKEN"
        ) from None
    dataset_dir, model_dir = Path(dataset.download()), Path(model.download())
    # The token only exists in this task's environment, for the duration of the push (push.py reads HF_TOKEN).
    with _env("HF_TOKEN", token):  # a failed push raises model_card.publish.PushError with its fix
        job_module.stage_push(
            make_job(spec, _workdir("push")), dataset_dir, model_dir, _manifest(dataset_dir)
        )


# --- the workflow -------------------------------------------------------------------------------------------
class Outputs(NamedTuple):
    dataset: FlyteDirectory  # the corpus as built (cached): what training and evaluation read
    run: FlyteDirectory  # RUN/ (adapter/, checkpoints/, base/ for tiny)
    eval: FlyteDirectory  # eval_results.json + infilling_tasks.jsonl
    model: FlyteDirectory  # the Hub model repo
    hub_dataset: FlyteDirectory  # the Hub dataset repo as published: the corpus + its `infilling` config


@workflow
def flyte_llama(
    recipe: str | None = None,
    corpus_config: str | None = None,
    mirrors: str | None = None,
    org: str | None = None,
    embedded: bool = True,
    train_overrides: list[str] = [],  # noqa: B006 (flytekit defaults are literals, never mutated)
    eval_overrides: list[str] = [],  # noqa: B006
    publish: bool = False,
) -> Outputs:
    """corpus → train → evaluate → model folder [→ publish]. The defaults are the offline demo (embedded:
    bundled sample repos, tiny recipe); `--no-embedded` is the real job (corpus.yaml, codellama-7b-lora).
    Publishing happens only with `--publish` and needs the `huggingface/token` secret.
    """
    p = plan(
        recipe=recipe,
        corpus_config=corpus_config,
        mirrors=mirrors,
        org=org,
        embedded=embedded,
        train_overrides=train_overrides,
        eval_overrides=eval_overrides,
    )
    dataset = build_corpus(spec=p.spec, corpus_version=p.corpus_version, config_sha256=p.config_sha256)
    tuned = fine_tune(
        spec=p.spec,
        dataset=dataset,
        config_sha256=p.config_sha256,
        recipe_sha256=p.recipe_sha256,
        eval_overrides=p.eval_overrides,
    )
    staged = stage_model(spec=p.spec, dataset=dataset, run=tuned.run, results=tuned.eval)
    # A conditional, not a flag inside the task: without --publish the task that requests the secret never
    # starts, so a cluster without the secret can still run everything else.
    conditional("publish").if_(publish.is_true()).then(
        push_to_hub(spec=p.spec, dataset=staged.dataset, model=staged.model)
    )
    return Outputs(
        dataset=dataset, run=tuned.run, eval=tuned.eval, model=staged.model, hub_dataset=staged.dataset
    )
