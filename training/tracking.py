"""Following a training run: the `report_to` backends a recipe names, and where TensorBoard writes.

Trainer imports a backend's package only when it builds its callbacks, after the corpus has been loaded and
tokenized: a missing `tensorboard` would fail minutes (hours, on the real corpus) into a run. So
`report_to_problems` is part of the recipe's validation (TrainConfig.__post_init__): every backend named
must be one transformers has a callback for and its package must be importable, and the error says what
to install. Availability is transformers' own test (`get_available_reporting_integrations`, which looks
for the package with importlib.util.find_spec), so what passes here is what Trainer will find.

TensorBoard's event files go to RUN/logs/ (`tensorboard --logdir RUN/logs`), not to Trainer's default
`output_dir/runs/<date>_<host>/` deep inside RUN/checkpoints/; a resumed run appends to the same folder.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any

from transformers.integrations import (
    INTEGRATION_TO_CALLBACK,
    TensorBoardCallback,
    get_available_reporting_integrations,
)
from transformers.integrations import integration_utils as _hf

LOGS_DIR = "logs"  # RUN/logs/: TensorBoard's event files

# What installs a backend's package; TensorBoard is this project's `track` extra (pyproject.toml).
INSTALL = {
    "tensorboard": 'pip install -e ".[track]"',
    "trackio": "pip install trackio",
    "flyte": 'pip install -e ".[flyte]"',
    "azure_ml": "pip install azureml-core",
    "comet_ml": "pip install comet-ml",
    "dagshub": "pip install dagshub mlflow",
    "kubeflow": "set KUBEFLOW_TRAINER_SERVER_URL (it is only available inside a Kubeflow trainer job)",
}


def available_backends() -> set[str]:
    """The `report_to` names whose package transformers finds now."""
    found = set(get_available_reporting_integrations())
    # Two callbacks that get_available_reporting_integrations leaves out (it feeds report_to="all").
    if _hf.is_flytekit_available():
        found.add("flyte")
    if _hf.is_kubeflow_available():
        found.add("kubeflow")
    return found


def backends(report_to: Any) -> list[str]:
    """The backends a `report_to` value names (`none`, `all`, None and [] name none by themselves)."""
    names = [report_to] if isinstance(report_to, str) else list(report_to or [])
    return [n for n in names if n not in ("none", "all")]


def report_to_problems(report_to: Any) -> list[str]:
    """Why `report_to` (a str or a list of str, already type-checked) would fail once training starts."""
    problems, known = [], sorted(INTEGRATION_TO_CALLBACK)
    names = backends(report_to)
    available = available_backends() if names else set()
    for name in names:
        if name not in INTEGRATION_TO_CALLBACK:
            close = difflib.get_close_matches(str(name), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(
                f"report_to={name!r}: no such backend{hint}; use none, all, or one of {', '.join(known)}"
            )
        elif name not in available:
            how = INSTALL.get(name, f"pip install {name}")
            problems.append(f"report_to={name!r}: its package is not installed: {how}")
    return problems


def send_tensorboard_to(trainer: Any, folder: Path) -> Path | None:
    """Point the trainer's TensorBoard callback (if report_to has one) at `folder`; returns it, or None.

    Must run before `trainer.train()`: the callback opens its writer at the start of training. An explicit
    TENSORBOARD_LOGGING_DIR (transformers' own override) is left to win."""
    if os.environ.get("TENSORBOARD_LOGGING_DIR"):
        return None
    callbacks = [c for c in trainer.callback_handler.callbacks if isinstance(c, TensorBoardCallback)]
    for callback in callbacks:
        callback.logging_dir = str(folder)
    return folder if callbacks else None
