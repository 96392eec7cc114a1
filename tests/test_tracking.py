"""Following training: `report_to` checked when the recipe loads, TensorBoard events in RUN/logs/, and the
loss curve as the training task's Flyte Deck."""

from __future__ import annotations

import importlib.util
import json
import re
from collections import OrderedDict
from pathlib import Path

import pytest
from test_training_data import make_corpus

import training.train
from model_card.plots import loss_curve_html
from training.__main__ import main
from training.config import load_recipe
from training.tracking import INSTALL

ROOT = Path(__file__).resolve().parents[1]
STEPS = ["max_steps=4", "eval_steps=2", "save_steps=4", "max_train_docs=120", "logging_steps=1"]


class ReachedTheData(RuntimeError):
    """Raised in place of loading the corpus: the config was accepted."""


@pytest.fixture
def no_data(monkeypatch):
    """`train` stops where it would start loading the corpus (the config was valid by then)."""

    def stop(*args, **kwargs):
        raise ReachedTheData("reached load_corpus")

    monkeypatch.setattr(training.train, "load_corpus", stop)


def hide(monkeypatch, *packages: str) -> None:
    """Make `packages` look uninstalled to importlib.util.find_spec (how transformers looks for them)."""
    real = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        return None if name.split(".")[0] in packages else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def train_cli(tmp_path: Path, *overrides: str) -> list[str]:
    sets = [item for pair in overrides for item in ("--set", pair)]
    return ["train", "--recipe", "tiny", "--dataset", str(tmp_path / "corpus"), "--output-dir",
            str(tmp_path / "run"), *sets]  # fmt: skip


def test_missing_tensorboard_fails_when_the_recipe_loads_before_any_data(
    monkeypatch, tmp_path, capsys, no_data
):
    hide(monkeypatch, "tensorboard", "tensorboardX")
    assert main(train_cli(tmp_path, "report_to=tensorboard")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: invalid recipe 'tiny': report_to='tensorboard'")
    assert 'pip install -e ".[track]"' in err
    assert "reached load_corpus" not in err and not (tmp_path / "run").exists()


def test_tensorboard_passes_validation_when_installed(tmp_path, capsys, no_data):
    pytest.importorskip("tensorboard")
    assert main(train_cli(tmp_path, "report_to=tensorboard")) == 2
    assert capsys.readouterr().err == "error: reached load_corpus\n"  # validation passed, data was next
    assert load_recipe("tiny", {"report_to": "tensorboard"}).report_to == ["tensorboard"]


def test_unknown_or_uninstalled_backends_are_refused_each_with_its_fix(monkeypatch):
    hide(monkeypatch, "trackio")
    with pytest.raises(
        ValueError, match=r"report_to='tensorbord': no such backend \(did you mean 'tensorboard'"
    ):
        load_recipe("tiny", {"report_to": "tensorbord"})
    with pytest.raises(ValueError) as exc:
        load_recipe("tiny", {"report_to": ["trackio", "nope"]})
    assert "report_to='trackio': its package is not installed: pip install trackio" in str(exc.value)
    assert "report_to='nope': no such backend" in str(exc.value)
    with pytest.raises(ValueError, match="report_to"):
        load_recipe("tiny", {"report_to": 3})  # the type check


def test_none_and_all_need_no_package(monkeypatch):
    hide(monkeypatch, "tensorboard", "tensorboardX", "trackio", "wandb", "mlflow")
    for value in ("none", [], ["none"]):
        assert load_recipe("tiny", {"report_to": value}).report_to == []
    assert "tensorboard" not in load_recipe("tiny", {"report_to": "all"}).report_to  # only what is installed


def test_the_install_hint_names_an_extra_that_exists():
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    extra = re.fullmatch(r'pip install -e "\.\[(\w+)\]"', INSTALL["tensorboard"]).group(1)
    assert any(dep.startswith("tensorboard") for dep in extras[extra])


def test_every_training_task_serialises_with_a_deck():
    pytest.importorskip("flytekitplugins.kfpytorch")
    from flytekit.configuration import ImageConfig, SerializationSettings
    from flytekit.tools.translator import get_serializable

    import workflows

    settings = SerializationSettings(image_config=ImageConfig.auto_default_image(), project="p", domain="d")
    trainers = [workflows.train, *workflows.MULTI_GPU_TRAINERS.values()]
    for task in [*trainers, workflows.plan]:
        spec = get_serializable(OrderedDict(), settings, task)
        assert spec.template.metadata.generates_deck is (task in trainers), task.name


# --- real runs ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("corpus") / "corpus", 120, 8)


@pytest.fixture(scope="module")
def tb_run(tmp_path_factory, corpus):
    pytest.importorskip("tensorboard")
    run = tmp_path_factory.mktemp("tb") / "run"
    cli = ["train", "--recipe", "tiny", "--dataset", str(corpus), "--output-dir", str(run)]
    assert main([*cli, "--set", "report_to=tensorboard", *(x for s in STEPS for x in ("--set", s))]) == 0
    return run


@pytest.mark.slow
def test_tensorboard_writes_the_logged_losses_under_run_logs(tb_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = sorted((tb_run / "logs").glob("events.out.tfevents.*"))
    assert events and not list((tb_run / "checkpoints").rglob("events.out.tfevents.*"))
    board = EventAccumulator(str(tb_run / "logs"))
    board.Reload()
    history = json.loads((tb_run / "adapter" / "training_log.json").read_text())["log_history"]
    train = [(r["step"], r["loss"]) for r in history if "loss" in r]
    logged = [(e.step, e.value) for e in board.Scalars("train/loss")]
    assert [s for s, _ in logged] == [s for s, _ in train] == [1, 2, 3, 4]
    assert [v for _, v in logged] == pytest.approx([v for _, v in train], rel=1e-5)
    assert len(board.Scalars("eval/loss")) >= 2


@pytest.mark.slow
def test_loss_curve_html_of_a_real_training_log(tb_run):
    history = json.loads((tb_run / "adapter" / "training_log.json").read_text())["log_history"]
    html = loss_curve_html(history)
    assert html.startswith("<svg") and "</svg>" in html
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", html)  # labels stay text (svg.fonttype none)
    assert {"train loss", "validation loss", "step", "Training loss"} <= set(texts)
    last_eval = [r for r in history if "eval_loss" in r][-1]
    assert f"validation loss {last_eval['eval_loss']:.4f} at step {last_eval['step']}" in html
    assert loss_curve_html(history) == html  # no dates or random ids: the same log, the same page
    assert loss_curve_html([{"step": 1, "learning_rate": 0.1}]) is None


@pytest.mark.slow
def test_the_train_task_run_locally_renders_the_loss_deck(corpus, tmp_path, monkeypatch):
    pytest.importorskip("flytekitplugins.kfpytorch")
    from flytekit.core import local_cache
    from flytekit.deck import deck as flyte_deck
    from flytekit.types.directory import FlyteDirectory

    import workflows

    pages: list[str] = []

    def capture(task_name, params):  # what flytekit writes to the task's deck.html (and uploads remotely)
        pages.append(flyte_deck._get_deck(new_user_params=params, ignore_jupyter=True))

    monkeypatch.setattr(flyte_deck, "_output_deck", capture)
    monkeypatch.setattr(local_cache, "CACHE_LOCATION", str(tmp_path / "local-cache"))
    monkeypatch.setattr(local_cache.LocalTaskCache, "_initialized", False)
    monkeypatch.chdir(tmp_path)
    spec = workflows.JobSpec(recipe="tiny", train_overrides=STEPS)
    try:
        out = workflows.train(
            spec=spec, dataset=FlyteDirectory(str(corpus)), config_sha256="c", recipe_sha256="r"
        )
    finally:
        local_cache.LocalTaskCache._initialized = False  # the next user opens the default cache again
    assert (Path(out.path) / "adapter" / "training_log.json").is_file()
    assert len(pages) == 1 and "validation loss" in pages[0] and "<svg" in pages[0]
