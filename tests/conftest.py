"""Every test run keeps its caches to itself: nothing under ~ is read or written.

Set at import, before any test module imports `datasets`, `huggingface_hub` or dataset_builder.config
(which read these variables once). Each xdist worker loads this file, so each gets its own folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

_ROOT = Path(tempfile.mkdtemp(prefix="flyte-llama-tests-"))
CACHE_VARIABLES = {
    "FLYTE_LLAMA_CACHE": _ROOT / "flyte-llama",  # dataset_builder.config.DEFAULT_CACHE
    "HF_HOME": _ROOT / "hf",
    "HF_DATASETS_CACHE": _ROOT / "hf" / "datasets",
    "HF_HUB_CACHE": _ROOT / "hf" / "hub",
    "XDG_CACHE_HOME": _ROOT / "xdg",
}
for _name, _path in CACHE_VARIABLES.items():
    os.environ[_name] = str(_path)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_ROOT, ignore_errors=True)
