"""Build small git repos in temp dirs with deterministic commits (fixed author, committer, dates).

The same files and messages give the same commit SHAs on every machine, so tests can pin them.

    repo = GitRepo.init(tmp_path / "flytekit")
    sha = repo.commit({"a.py": "x = 1\\n"}, symlinks={"link.py": "a.py"}, submodules={"sub": "0" * 40})
    repo.tag("v1.0.0")
    bare = repo.clone_bare(tmp_path / "mirrors" / "flytekit.git")
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml

AUTHOR = "Test Author"
EMAIL = "test@example.com"
EPOCH = 1_700_000_000  # 2023-11-14T22:13:20Z; each commit adds a minute


def _env(when: int) -> dict[str, str]:
    date = f"@{when} +0000"
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
        "GIT_AUTHOR_NAME": AUTHOR,
        "GIT_AUTHOR_EMAIL": EMAIL,
        "GIT_AUTHOR_DATE": date,
        "GIT_COMMITTER_NAME": AUTHOR,
        "GIT_COMMITTER_EMAIL": EMAIL,
        "GIT_COMMITTER_DATE": date,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,  # no user config (signing, hooks, templates) leaks in
        "GIT_TERMINAL_PROMPT": "0",
    }


@dataclass
class GitRepo:
    path: Path
    commits: int = 0

    def git(self, *args: str, input: bytes | None = None, when: int | None = None) -> str:
        proc = subprocess.run(
            ["git", "-C", str(self.path), *args],
            env=_env(EPOCH + 60 * self.commits if when is None else when),
            input=input,
            capture_output=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)} failed: {proc.stderr.decode()}")
        return proc.stdout.decode()

    @classmethod
    def init(cls, path: Path, branch: str = "main") -> GitRepo:
        path.mkdir(parents=True, exist_ok=True)
        repo = cls(path)
        repo.git("init", "--quiet", f"--initial-branch={branch}")
        return repo

    def commit(
        self,
        files: dict[str, str | bytes],
        message: str | None = None,
        symlinks: dict[str, str] | None = None,
        submodules: dict[str, str] | None = None,
        delete: list[str] | None = None,
        when: str | None = None,
    ) -> str:
        """Write files (str → UTF-8), symlinks (path → target) and gitlinks (path → commit SHA); commit,
        dated `when` (an ISO date-time, for back-dated history) or one minute after the previous commit."""
        for rel, content in files.items():
            target = self.path / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content.encode() if isinstance(content, str) else content)
        for rel, link_target in (symlinks or {}).items():
            link = self.path / rel
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(link_target)
        for rel in delete or []:
            self.git("rm", "--quiet", rel)
        self.git("add", "--all")
        for rel, sha in (submodules or {}).items():
            # A gitlink entry (mode 160000) without a checked-out submodule, as in a repo's index.
            self.git("update-index", "--add", "--cacheinfo", f"160000,{sha},{rel}")
        at = int(datetime.fromisoformat(when).timestamp()) if when else None
        self.git(
            "commit",
            "--quiet",
            "--allow-empty",
            "--no-verify",
            "-m",
            message or f"commit {self.commits}",
            when=at,
        )
        self.commits += 1
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").strip()

    def tag(self, name: str, annotated: bool = False) -> str:
        if annotated:
            self.git("tag", "-a", name, "-m", name)
        else:
            self.git("tag", name)
        return self.git("rev-parse", f"{name}^{{commit}}").strip()

    def clone_bare(self, dest: Path) -> Path:
        """A bare copy (like a mirror) at `dest`."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["git", "clone", "--quiet", "--bare", str(self.path), str(dest)], env=_env(EPOCH), check=True
        )
        return dest

    def url(self) -> str:
        return self.path.resolve().as_uri()


def _notebook(language: str = "python") -> str:
    import json

    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Hello Flyte\n", "A workflow."]},
        {
            "cell_type": "code",
            "metadata": {},
            "execution_count": 1,
            "source": ["from flytekit import task\n", "print('hi')"],
            "outputs": [{"output_type": "stream", "name": "stdout", "text": ["OUTPUT_SHOULD_BE_DROPPED\n"]}],
        },
    ]
    meta = {"kernelspec": {"name": "python3", "language": language}, "language_info": {"name": language}}
    return json.dumps({"cells": cells, "metadata": meta, "nbformat": 4, "nbformat_minor": 5})


# path → (content, expected drop reason or None when kept). One file per filter reason, plus kept files
# of every language family. Sizes are small; the "too_large" file exceeds a test threshold of 4000 bytes.
TRAIN_FILES: dict[str, tuple[str | bytes, str | None]] = {
    "flytekit/core/task.py": ("from typing import Any\n\n\ndef task(fn: Any) -> Any:\n    return fn\n", None),
    "flytekit/core/broken.py": ("def broken(:\n    pass\n", None),  # kept, parses=False
    "tests/test_task.py": (
        "from flytekit.core.task import task\n\n\ndef test_task():\n    assert task\n",
        None,
    ),
    "go/cmd/main.go": ('package main\n\nimport "fmt"\n\nfunc main() {\n\tfmt.Println("hi")\n}\n', None),
    "go/cmd/main_test.go": ('package main\n\nimport "testing"\n\nfunc TestMain(t *testing.T) {}\n', None),
    "console/src/App.tsx": ("export const App = () => <div>Hello</div>;\n", None),
    "console/src/util.ts": (
        "export function add(a: number, b: number): number {\n  return a + b;\n}\n",
        None,
    ),
    "console/src/util.spec.ts": ("import { add } from './util';\ntest('add', () => add(1, 2));\n", None),
    "protos/task.proto": ('syntax = "proto3";\npackage flyteidl;\nmessage Task { string id = 1; }\n', None),
    "README.md": ("# Flyte\n\nA workflow engine.\n", None),
    "docs/index.rst": ("Flyte\n=====\n\nWelcome.\n", None),
    "scripts/setup": ("#!/usr/bin/env bash\nset -euo pipefail\necho setup\n", None),  # shebang → shell
    "Dockerfile": ("FROM python:3.11\nRUN pip install flytekit\n", None),
    "Makefile": ("test:\n\tpytest\n", None),
    "config/app.yaml": ("name: flyte\nreplicas: 2\n", None),
    "pyproject.toml": ('[project]\nname = "flytekit"\n', None),
    "config/small.json": ('{"name": "flyte", "replicas": 2}\n', None),
    "examples/hello.ipynb": (_notebook(), None),
    # dropped, one per reason
    "gen/pb-go/flyteidl/core/task.pb.go": ("package core\n", "generated"),
    "flyteidl/core/task_pb2.py": ("x = 1\n", "generated"),
    "flyteidl/core/task_pb2_grpc.py": ("x = 1\n", "generated"),
    "pkg/mocks/Client.go": ("package mocks\n", "generated"),
    "pkg/api/zz_header.go": ("// Code generated by protoc-gen-go. DO NOT EDIT.\npackage api\n", "generated"),
    "pkg/api/client.py": ("# @generated by a tool\nx = 1\n", "generated"),
    "vendor/github.com/lib/lib.go": ("package lib\n", "vendored"),
    "console/node_modules/left-pad/index.js": ("module.exports = 1;\n", "vendored"),
    "dist/bundle.py": ("x = 1\n", "vendored"),
    "go.sum": ("github.com/x/y v1.0.0 h1:abc=\n", "lockfile"),
    "console/yarn.lock": ("# yarn lockfile v1\n", "lockfile"),
    "poetry.lock": ("[[package]]\n", "lockfile"),
    "assets/logo.png": (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "asset"),
    "data/table.csv": ("a,b\n1,2\n", "asset"),
    "console/static/app.min.js": ("var a=1;\n", "minified"),
    "console/src/long_line.js": ("var x = '" + "a" * 1500 + "';\n", "minified"),
    "data/symbols.py": ("# =+-*/<>{}[]()!;:,.\n" * 30, "low_alnum"),
    "data/blob.py": ("x = 1\n" * 40 + "DATA = '" + "QUJD" * 150 + "'\n", "encoded_data"),
    "bin/tool.py": (b"x = 1\n\0\0\0binary", "binary"),
    "latin1.py": (b"# caf\xe9\nx = 1\n", "undecodable"),
    "big.py": ("x = 1\n" * 800, "too_large"),
    "src/main.rs": ("fn main() {}\n", "unsupported_language"),
    "notes": ("just some text without a shebang\n", "unsupported_language"),
    "broken.ipynb": ("{not json", "invalid_notebook"),
    "pkg/__init__.py": ("\n", "empty"),
}

TEST_FILES: dict[str, tuple[str | bytes, str | None]] = {
    "examples/basics/hello.py": (
        "from flytekit import task, workflow\n\n\n@task\ndef t() -> int:\n    return 1\n",
        None,
    ),
    "examples/basics/README.md": ("# Basics\n", None),
    "examples/talk.ipynb": (_notebook(), None),
    "package-lock.json": ('{"lockfileVersion": 3}\n', "lockfile"),
}

FILTER_OVERRIDES = ["filters.max_file_bytes=4000", "filters.max_encoded_run_chars=200"]


def files_of(spec: dict[str, tuple[str | bytes, str | None]]) -> dict[str, str | bytes]:
    return {path: content for path, (content, _) in spec.items()}


def expected_drops(*specs: dict[str, tuple[str | bytes, str | None]]) -> dict[str, int]:
    from collections import Counter

    return dict(Counter(reason for spec in specs for _, reason in spec.values() if reason))


def write_config(path: Path, pins: dict[str, str], urls: dict[str, str] | None = None, **extra) -> Path:
    """A recipe YAML for the fixture repos `trainrepo` (train) and `testrepo` (test) at `pins`."""
    roles = {"trainrepo": "train", "testrepo": "test"}
    data = {
        "version": "0.1.0",
        "repos": [
            {
                "name": n,
                "url": (urls or {}).get(n, f"https://example.invalid/{n}"),
                "ref": "main",
                "commit": sha,
                "split": roles[n],
                "license": "Apache-2.0",
            }
            for n, sha in pins.items()
        ],
        "splits": {"validation_fraction": 0.25, "salt": "test"},
        **extra,
    }
    path.write_text("# fixture recipe\n" + yaml.safe_dump(data, sort_keys=False))
    return path
