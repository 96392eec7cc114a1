"""The cache keys change when code that shapes the corpus changes, and only then."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dataset_builder import fingerprint

PACKAGE = Path(fingerprint.__file__).parent


@pytest.fixture
def copy(tmp_path, monkeypatch):
    shutil.copytree(PACKAGE, tmp_path / "dataset_builder", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(PACKAGE.parent / "flyte_llama_common", tmp_path / "flyte_llama_common")
    monkeypatch.setattr(fingerprint, "_HERE", tmp_path / "dataset_builder")
    fingerprint.code_fingerprint.cache_clear()
    yield tmp_path / "dataset_builder"
    fingerprint.code_fingerprint.cache_clear()


def _keys() -> tuple[str, str]:
    fingerprint.code_fingerprint.cache_clear()
    return (
        fingerprint.code_fingerprint(fingerprint.REPO_STEP_CODE),
        fingerprint.code_fingerprint(fingerprint.BUILD_CODE),
    )


@pytest.mark.parametrize("name", ["__main__.py", "summary.py", "pin.py", "sources.py"])
def test_editing_wiring_or_help_keeps_every_cache(copy, name):
    before = _keys()
    (copy / name).write_text((copy / name).read_text() + "\n# a new help string\n")
    assert _keys() == before


@pytest.mark.parametrize(
    "name", ["filters.py", "redact.py", "repo_step.py", "../flyte_llama_common/treesitter.py"]
)
def test_editing_a_per_repo_step_invalidates_both(copy, name):
    before = _keys()
    (copy / name).write_text((copy / name).read_text() + "\n# changed\n")
    after = _keys()
    assert after[0] != before[0] and after[1] != before[1]


def test_editing_dedup_rebuilds_the_corpus_but_rereads_no_repo(copy):
    before = _keys()
    (copy / "dedup.py").write_text((copy / "dedup.py").read_text() + "\n# changed\n")
    after = _keys()
    assert after[0] == before[0] and after[1] != before[1]


def test_every_listed_file_exists():
    for name in fingerprint.BUILD_CODE:
        assert (PACKAGE / name).is_file(), name
