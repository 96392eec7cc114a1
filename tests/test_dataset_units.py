"""Pure pieces of the corpus builder: config validation, filters, languages, notebooks, splits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from dataset_builder.config import DEFAULT_CONFIG, ConfigError, FilterConfig, SplitConfig, load_config
from dataset_builder.filters import bytes_reason, decode, path_reason, text_reason
from dataset_builder.languages import detect_language, is_test_path
from dataset_builder.notebooks import NotebookError, notebook_to_percent
from dataset_builder.splits import assign_split, validation_score
from flyte_llama_common.treesitter import parses

# ---------------------------------------------------------------- config


def test_default_recipe_pins_the_nine_repos() -> None:
    cfg = load_config()
    assert [r.name for r in cfg.repos] == [
        "flyte",
        "flytekit",
        "flytepropeller",
        "flyteplugins",
        "flyteidl",
        "flyteadmin",
        "flyteconsole",
        "flytesnacks",
        "flyte-conference-talks",
    ]
    assert (
        cfg.repo("flyte").ref == "v1.16.8"
        and cfg.repo("flyte").commit == "51877f899c9f95e0cb5efe90444eb0c6c6ea48a9"
    )
    assert {r.name for r in cfg.repos if r.split == "test"} == {"flytesnacks", "flyte-conference-talks"}
    assert {r.license for r in cfg.repos} == {"Apache-2.0"} and cfg.version == "1.0.0"
    assert cfg.splits.validation_fraction == 0.02
    assert len(cfg.config_sha256) == 64 and cfg.config_sha256 == load_config().config_sha256


def test_overrides_change_the_hash() -> None:
    cfg = load_config(None, ["filters.max_file_bytes=5", "repos.flytekit.commit=" + "a" * 40])
    assert cfg.filters.max_file_bytes == 5 and cfg.repo("flytekit").commit == "a" * 40
    assert cfg.config_sha256 != load_config().config_sha256


def _bad(tmp_path: Path, mutate) -> Path:
    data = yaml.safe_load(DEFAULT_CONFIG.read_text())
    mutate(data)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["repos"][0].update(commit="abc123"), "not a full 40-hex lowercase SHA"),
        (lambda d: d["repos"][0].update(split="eval"), "split 'eval' is not one of"),
        (lambda d: d["repos"].append(dict(d["repos"][1])), "duplicate repo name 'flytekit'"),
        (lambda d: d.update(version="1.0"), "not semver"),
        (lambda d: d.update(colour="red"), "unknown key(s) ['colour']"),
        (lambda d: d["filters"].update(max_file_bytes="big"), "expected int"),
        (lambda d: d["splits"].update(validation_fraction=1.5), "validation_fraction must be in [0, 1)"),
        (lambda d: d["repos"][0].pop("commit"), "missing required key 'commit'"),
        (lambda d: d.update(repos=[]), "list at least one repository"),
    ],
)
def test_invalid_configs_are_rejected(tmp_path: Path, mutate, message: str) -> None:
    with pytest.raises(ConfigError, match=None) as err:
        load_config(_bad(tmp_path, mutate))
    assert message in str(err.value) and "bad.yaml" in str(err.value)


def test_config_errors_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found; pass --config"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config(None, ["filters.max_file_bytes"])
    with pytest.raises(ConfigError, match="no repo named 'nope'"):
        load_config(None, ["repos.nope.commit=x"])
    with pytest.raises(ConfigError, match=r"corpus\.yaml.*dedup\.threshold must be in \(0, 1\]"):
        load_config(None, ["dedup.threshold=1.5"])
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(None, ["dedup.bands=4"])
    assert load_config(None, ["dedup.threshold=0.8"]).dedup.threshold == 0.8


# ---------------------------------------------------------------- filters

F = FilterConfig()


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("vendor/a/b.go", "vendored"),
        ("web/node_modules/x/index.js", "vendored"),
        ("pkg/third_party/x.py", "vendored"),
        ("build/lib/x.py", "vendored"),
        ("go.sum", "lockfile"),
        ("web/package-lock.json", "lockfile"),
        ("uv.lock", "lockfile"),
        ("monodocs-environment.lock.yaml", "lockfile"),
        ("envs/conda-lock.yml", "lockfile"),
        ("flyteidl/gen/pb-go/x.pb.go", "generated"),
        ("x_pb2.py", "generated"),
        ("x_pb2_grpc.py", "generated"),
        ("service.pb.ts", "generated"),
        ("a/mocks/Client.go", "generated"),
        ("api/admin.swagger.json", "generated"),
        ("docs/logo.PNG", "asset"),
        ("data/x.parquet", "asset"),
        ("fonts/a.woff2", "asset"),
        ("web/app.min.js", "minified"),
        ("flytekit/core/task.py", None),
        ("docs/index.md", None),
    ],
)
def test_path_reasons(path: str, reason: str | None) -> None:
    assert path_reason(path, F) == reason


def test_bytes_and_text_reasons() -> None:
    assert bytes_reason(None, "python", F) == "missing_blob"
    assert bytes_reason(b"x" * (F.max_file_bytes + 1), "python", F) == "too_large"
    assert bytes_reason(b"{}" * F.max_json_bytes, "json", F) == "too_large"
    assert bytes_reason(b"ab\0cd", "python", F) == "binary"
    assert bytes_reason(b"x = 1\n", "python", F) is None
    assert decode(b"\xff\xfe") is None and decode("\ufeffé".encode()) == "é"
    assert text_reason("// Code generated by mockery v2. DO NOT EDIT.\npackage m\n", F) == "generated"
    assert text_reason("# Generated by the protocol buffer compiler.\nx = 1\n", F) == "generated"
    assert text_reason("x = '" + "y" * 1200 + "'\n", F) == "minified"
    assert text_reason(("z" * 150 + "\n") * 10, F) == "minified"  # mean line > 100
    assert text_reason(("z" * 150 + "\n") * 10, F, prose=True) is None  # unwrapped paragraphs are fine
    assert text_reason("{}[]();,.\n" * 20, F) == "low_alnum"
    assert text_reason("x = 1\n" * 50 + "b = '" + "0f" * 600 + "'\n", FilterConfig(max_line_chars=5000)) == (
        "encoded_data"
    )
    assert text_reason("def f():\n    return 'generated on demand'\n", F) is None  # mention ≠ marker


# ---------------------------------------------------------------- languages, notebooks


@pytest.mark.parametrize(
    ("path", "head", "language"),
    [
        ("a.py", b"", "python"),
        ("a.pyi", b"", "python"),
        ("a.go", b"", "go"),
        ("a.tsx", b"", "tsx"),
        ("a.mjs", b"", "javascript"),
        ("x.proto", b"", "protobuf"),
        ("README.rst", b"", "rst"),
        ("docker/Dockerfile.dev", b"", "dockerfile"),
        ("GNUmakefile", b"", "makefile"),
        ("c.yml", b"", "yaml"),
        ("bin/run", b"#!/usr/bin/env python3\n", "python"),
        ("bin/run", b"#!/bin/bash\n", "shell"),
        ("bin/run", b"hello", None),
        ("a.rs", b"", None),
        ("n.ipynb", b"", "notebook"),
    ],
)
def test_detect_language(path: str, head: bytes, language: str | None) -> None:
    assert detect_language(path, head) == language


def test_test_paths_and_parses() -> None:
    assert is_test_path("tests/unit/x.py") and is_test_path("pkg/x_test.go") and is_test_path("a/b.spec.tsx")
    assert not is_test_path("flytekit/core/testing.py")
    assert parses("python", "def f():\n    return 1\n") is True
    assert parses("python", "def f(:\n") is False
    assert parses("go", "package main\nfunc main() {}\n") is True
    assert parses("markdown", "# x") is None


def test_notebook_to_percent() -> None:
    nb = {
        "metadata": {"kernelspec": {"language": "python"}},
        "cells": [
            {"cell_type": "markdown", "source": "# Title\nText"},
            {"cell_type": "code", "source": ["x = 1\n", "x"], "outputs": [{"data": {"image/png": "iVBOR"}}]},
            {"cell_type": "raw", "source": "ignored"},
        ],
    }
    text, language = notebook_to_percent(json.dumps(nb))
    assert language == "python"
    assert text == "# %% [markdown]\n# # Title\n# Text\n\n# %%\nx = 1\nx\n"
    with pytest.raises(NotebookError):
        notebook_to_percent("[]")


# ---------------------------------------------------------------- splits


def test_split_assignment_is_exact_and_stable() -> None:
    cfg = SplitConfig(validation_fraction=0.02, salt="flyte-llama")
    assert assign_split("test", "flytesnacks", "any.py", cfg) == "test"
    paths = [f"pkg/m{i}.py" for i in range(5000)]
    val = [p for p in paths if assign_split("train", "flytekit", p, cfg) == "validation"]
    assert 70 <= len(val) <= 130  # ~2%
    assert val == [p for p in paths if validation_score("flyte-llama", "flytekit", p) < 0.02]
    # The same file stays in the same split whatever else is in the corpus; the salt reshuffles.
    assert val == [p for p in paths if assign_split("train", "flytekit", p, cfg) == "validation"]
    other = SplitConfig(validation_fraction=0.02, salt="other")
    assert val != [p for p in paths if assign_split("train", "flytekit", p, other) == "validation"]
    assert (
        validation_score("s", "r", "p")
        == int.from_bytes(__import__("hashlib").sha256(b"s\0r\0p").digest()[:8], "big") / 2**64
    )
    assert assign_split("train", "r", "p", SplitConfig(validation_fraction=0.0)) == "train"
    with pytest.raises(ValueError, match="unknown split role"):
        assign_split("eval", "r", "p", cfg)
