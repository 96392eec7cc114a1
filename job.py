"""The whole Flyte Llama job in one command: corpus → train → evaluate → cards → staged Hub folders → push.

    python job.py --embedded                   # offline default: bundled sample repos + `tiny` recipe
    python job.py --mirrors DIR --recipe tiny  # the nine real repos from local git mirrors, CPU smoke run
    python job.py --org ORG --push             # the real job: GitHub repos, codellama-7b-lora, GPU, network

Every stage is also a command of its own (`python -m dataset_builder build`,
`python -m training train|evaluate`, `python -m model_card.stage`, `python push.py`); this file only wires
them, and `workflows.py` runs the same stage functions as Flyte tasks. Outputs: OUT/<corpus name>/ (the Hub
dataset repo) and OUT/flyte-llama-<recipe>/ (the Hub model repo), both written atomically; WORK/ holds the
corpus as built (WORK/corpus/), runs and checkpoints. No stage rewrites another stage's output.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from training.eval_config import EvalConfig

SAMPLES_CONFIG = Path(__file__).resolve().parent / "dataset_builder" / "samples.yaml"


@dataclass
class Job:
    """What to build and where. Defaults are the real job; `embedded()` gives the offline demo."""

    recipe: str = "codellama-7b-lora"
    corpus_config: Path | None = None  # None: dataset_builder/corpus.yaml (the nine pinned GitHub repos)
    mirrors: Path | None = None  # local git dirs instead of GitHub
    org: str | None = None  # Hub namespace; None keeps the corpus config's hub_repo_id namespace
    out: Path = Path("hub")
    work: Path = Path("runs/job")
    cache_dir: Path | None = None
    train_overrides: list[str] = field(default_factory=list)
    # EvalConfig fields as KEY=VALUE (training/eval_config.py), e.g. "infill_tasks=12"; the stage sets the
    # adapter, dataset, output and (unless given) the context the adapter was trained at.
    eval_overrides: list[str] = field(default_factory=list)
    push: bool = False
    progress: bool = True

    @classmethod
    def embedded(cls, **kw) -> Job:
        """The offline default: sample repos made into git repos under WORK/samples, the `tiny` recipe."""
        job = cls(recipe="tiny", corpus_config=SAMPLES_CONFIG, **kw)
        job.eval_overrides = ["infill_tasks=12", "max_new_tokens=24", "batch_size=8", *job.eval_overrides]
        return job

    @classmethod
    def create(
        cls, *, embedded: bool, recipe: str | None = None, corpus_config: Path | None = None, **kw
    ) -> Job:
        """The one mapping from the job's options (CLI flags, the workflow's JobSpec) to a Job: the
        embedded demo's or the real job's defaults, then the recipe and corpus config when given."""
        job = cls.embedded(**kw) if embedded else cls(**kw)
        if recipe:
            job.recipe = recipe
        if corpus_config:
            job.corpus_config = corpus_config
        return job

    @property
    def model_name(self) -> str:
        return "flyte-llama-" + self.recipe.removeprefix("codellama-")


def dataset_repo_id(job: Job, manifest: dict) -> str:
    hub_id = manifest["config"]["hub_repo_id"]
    return f"{job.org}/{hub_id.split('/', 1)[1]}" if job.org else hub_id


def model_repo_id(job: Job, manifest: dict) -> str:
    org = job.org or manifest["config"]["hub_repo_id"].split("/", 1)[0]
    return f"{org}/{job.model_name}"


def stage_corpus(job: Job) -> tuple[Path, dict]:
    """Build the dataset folder (= the Hub dataset repo) and return it with its manifest."""
    from dataset_builder.build import build_corpus
    from dataset_builder.config import DEFAULT_CACHE, load_config
    from dataset_builder.summary import print_summary
    from model_card.dataset_card import render_dataset_card

    mirrors = job.mirrors
    if job.corpus_config == SAMPLES_CONFIG and mirrors is None:
        from samples.make_repos import make_sample_repos

        mirrors = job.work / "samples"
        make_sample_repos(mirrors)  # idempotent: an existing folder is checked, not rebuilt
    name = load_config(job.corpus_config).name
    out = (
        job.work / "corpus" / name
    )  # the build's own output; stage_cards publishes a copy with the benchmark
    manifest = build_corpus(
        out,
        job.corpus_config,
        overrides=corpus_overrides(job),
        mirrors=mirrors,
        cache_dir=job.cache_dir or DEFAULT_CACHE,
        progress=job.progress,
        render_card=render_dataset_card,
    )
    print_summary(manifest)
    return out, manifest


def stage_train(job: Job, dataset_dir: Path, resume: bool = False) -> Path:
    """LoRA fine-tuning of the recipe on the corpus; returns the RUN folder (RUN/adapter is the result)."""
    from training.config import TrainConfig, parse_overrides, recipe_dict
    from training.train import train

    run_dir = job.work / job.recipe
    data = recipe_dict(job.recipe, {**parse_overrides(job.train_overrides), "dataset_name": str(dataset_dir)})
    if not resume and run_dir.exists() and any(run_dir.iterdir()):
        # A stage never destroys its input: an earlier run (its adapter, checkpoints, evaluation) stays.
        raise FileExistsError(
            f"{run_dir} already holds a training run: pass --resume to continue it, or another --work "
            f"(or remove {run_dir} yourself) to start afresh"
        )
    config = TrainConfig(**data)
    from training.plan import print_plan, train_plan

    if os.environ.get("RANK", "0") == "0":  # under torch elastic, one table, not one per GPU
        print_plan(train_plan(config))  # what the recipe will do on this corpus, before a model is loaded
    train(config, run_dir, resume=resume, recipe_keys=list(data))
    return run_dir


def eval_config(job: Job, dataset_dir: Path, run_dir: Path) -> EvalConfig:
    """The evaluation of this job's run: the adapter against its base on the corpus' test split."""
    from training.eval_config import EvalConfig, parse_eval_overrides

    values = parse_eval_overrides(job.eval_overrides)
    if "context" not in values and (run_dir / "adapter" / "training_log.json").is_file():
        # Score with the context the adapter was trained at, not the base's (longer) maximum.
        summary = json.loads((run_dir / "adapter" / "training_log.json").read_text())["summary"]
        values["context"] = summary["max_length"]
    mirrors = job.mirrors or (job.work / "samples" if job.corpus_config == SAMPLES_CONFIG else None)
    if "git_dirs" not in values and mirrors is not None:
        values["git_dirs"] = str(mirrors)  # the repos' history dates each task: the fresh slice
    out = run_dir / "eval" / "eval_results.json"
    return EvalConfig(
        **{**values, "adapter": str(run_dir / "adapter"), "dataset": str(dataset_dir), "out": str(out)}
    )


def stage_evaluate(job: Job, dataset_dir: Path, run_dir: Path) -> Path:
    """Test-split perplexity and infilling, base vs adapter, into RUN/eval/eval_results.json."""
    from training.evaluate import evaluate

    config = eval_config(job, dataset_dir, run_dir)
    Path(config.out).parent.mkdir(parents=True, exist_ok=True)
    evaluate(config)
    return Path(config.out)


def stage_cards(
    job: Job, run_dir: Path, eval_results: Path, dataset_dir: Path, manifest: dict
) -> tuple[Path, Path]:
    """The two Hub folders, as new folders under OUT (the corpus and the run are left as they are):
    OUT/<corpus name>: the corpus plus the evaluation's infilling tasks as its `infilling` config, so the
    benchmark is published too; OUT/<model name>: adapter files, model card, plots, eval results.
    Returns (dataset folder, model folder)."""
    from dataset_builder.infilling_config import add_from_eval_results
    from flyte_llama_common.atomic import staged_dir
    from model_card.dataset_card import render_dataset_card
    from model_card.stage import stage_model

    model_dir = stage_model(
        run_dir / "adapter",
        eval_results,
        job.out / job.model_name,
        repo_id=model_repo_id(job, manifest),
        dataset_id=dataset_repo_id(job, manifest),
        manifest_path=dataset_dir / "manifest.json",
    )
    published = job.out / dataset_dir.name
    added = add_from_eval_results(dataset_dir, eval_results, render_card=render_dataset_card, out=published)
    if added is None:  # the evaluation ran no infilling: publish the corpus as built
        with staged_dir(published) as tmp:
            shutil.copytree(dataset_dir, tmp, dirs_exist_ok=True)
    return published, model_dir


def stage_push(job: Job, dataset_dir: Path, model_dir: Path, manifest: dict) -> None:
    """Publish both folders, one commit each: the dataset tagged with the corpus version, the model with its
    own version (model_card/identity.py). Raises PushError (and pushes nothing more) when a folder fails its
    checks or the Hub refuses it."""
    from model_card.identity import staged_version
    from model_card.publish import PushError, publish

    for kind, folder, repo_id in (
        ("dataset", dataset_dir, dataset_repo_id(job, manifest)),
        ("model", model_dir, model_repo_id(job, manifest)),
    ):
        result = publish(folder, repo_id, kind, tag=staged_version(folder, kind))
        if result.problems:
            raise PushError(
                f"push of the {kind} to {repo_id} failed its checks ({'; '.join(result.problems)}); "
                "nothing else was pushed"
            )


def corpus_overrides(job: Job) -> list[str]:
    """The corpus config overrides of this job: with `--org`, the dataset's Hub id in that namespace (the
    card is rendered for the repo it will be pushed to; push refuses a card made for another)."""
    from dataset_builder.config import load_config

    if not job.org:
        return []
    name = load_config(job.corpus_config).hub_repo_id.split("/", 1)[1]
    return [f"hub_repo_id={job.org}/{name}"]


def check_configs(job: Job) -> None:
    """Load and validate the corpus config, the training recipe (with its overrides) and the evaluation
    settings before any work: a typo fails in a second with the fix, not after the corpus build."""
    from dataset_builder.config import load_config
    from training.config import TrainConfig, parse_overrides, recipe_dict

    load_config(job.corpus_config, corpus_overrides(job))
    TrainConfig(
        **recipe_dict(job.recipe, {**parse_overrides(job.train_overrides), "dataset_name": "(the corpus)"})
    )
    eval_config(job, job.work / "corpus", job.work / job.recipe)


def run(job: Job, resume: bool = False) -> dict[str, Path]:
    """All stages in order; returns the staged folders. Prints a line per stage with its wall time."""
    timings: dict[str, float] = {}

    def timed(name, fn, *args, **kw):
        start = time.perf_counter()
        value = fn(*args, **kw)
        timings[name] = time.perf_counter() - start
        print(f"[job] {name} done in {timings[name]:.1f}s", flush=True)
        return value

    check_configs(job)  # every config, before minutes of corpus build
    dataset_dir, manifest = timed("corpus", stage_corpus, job)
    run_dir = timed("train", stage_train, job, dataset_dir, resume=resume)
    eval_results = timed("evaluate", stage_evaluate, job, dataset_dir, run_dir)
    dataset_dir, model_dir = timed("cards", stage_cards, job, run_dir, eval_results, dataset_dir, manifest)
    if job.push:
        timed("push", stage_push, job, dataset_dir, model_dir, manifest)
    print(f"[job] total {sum(timings.values()):.1f}s")
    print(json.dumps({"dataset": str(dataset_dir), "model": str(model_dir), "run": str(run_dir)}, indent=2))
    return {"dataset": dataset_dir, "model": model_dir, "run": run_dir}


def build_parser() -> argparse.ArgumentParser:
    """The options of `python job.py`."""
    ap = argparse.ArgumentParser(
        prog="python job.py",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--embedded", action="store_true", help="offline demo: bundled sample repos, tiny recipe")
    ap.add_argument("--recipe", help="training recipe (default: codellama-7b-lora; tiny with --embedded)")
    ap.add_argument(
        "--corpus-config", type=Path, help="corpus recipe YAML (default: dataset_builder/corpus.yaml)"
    )
    ap.add_argument("--mirrors", type=Path, help="read the repos from local git dirs DIR/<name>[.git]")
    ap.add_argument("--org", help="Hub namespace for both repos (default: the corpus config's)")
    ap.add_argument(
        "--out", type=Path, default=Path("hub"), help="where the staged Hub folders go (default: hub)"
    )
    ap.add_argument("--work", type=Path, default=Path("runs/job"), help="runs, checkpoints, sample repos")
    ap.add_argument(
        "--cache-dir",
        type=Path,
        help="git clones and prepared builds (default: $FLYTE_LLAMA_CACHE or ~/.cache/flyte-llama)",
    )
    ap.add_argument(
        "--set",
        action="extend",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="training recipe overrides, e.g. --set max_steps=10 (repeatable: all are applied)",
    )
    ap.add_argument(
        "--eval-set",
        action="extend",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="evaluation overrides (training/eval_config.py fields), e.g. --eval-set infill_tasks=50",
    )
    ap.add_argument("--resume", action="store_true", help="continue training from WORK/<recipe>/checkpoints")
    ap.add_argument("--push", action="store_true", help="publish both folders to the Hub (needs a token)")
    ap.add_argument("--no-progress", action="store_true")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    common = dict(
        mirrors=args.mirrors,
        org=args.org,
        out=args.out,
        work=args.work,
        cache_dir=args.cache_dir,
        train_overrides=args.set,
        eval_overrides=args.eval_set,
        push=args.push,
        progress=not args.no_progress,
    )
    job = Job.create(embedded=args.embedded, recipe=args.recipe, corpus_config=args.corpus_config, **common)
    from dataset_builder.config import ConfigError
    from dataset_builder.gitread import GitError
    from dataset_builder.sources import SourceError
    from model_card.publish import PushError
    from model_card.stage import StageError

    expected = (ConfigError, GitError, SourceError, StageError, PushError, ValueError, OSError)
    try:
        run(job, resume=args.resume)
    except expected as exc:
        # Expected failures carry their fix in the message; a traceback would only hide it.
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
