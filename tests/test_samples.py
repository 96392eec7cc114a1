"""The embedded sample repos: deterministic commits, the expected content, and the planted cases."""

from __future__ import annotations

import ast
import difflib
import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from tree_sitter_language_pack import get_parser

from samples.make_repos import (
    AUTHOR_EMAIL,
    AUTHOR_NAME,
    REPOS_DIR,
    SAMPLES,
    file_mode,
    main,
    make_sample_repos,
    sample_files,
    samples_pins,
)

NAMES = [s.name for s in SAMPLES]
EXTENSION_LANGUAGE = {
    ".py": "python",
    ".go": "go",
    ".ts": "typescript",
    ".tsx": "tsx",
    ".js": "javascript",
    ".proto": "protobuf",
    ".md": "markdown",
    ".rst": "restructuredtext",
    ".ipynb": "notebook",
    ".sql": "sql",
    ".yaml": "yaml",
    ".json": "json",
    ".toml": "toml",
}
FILENAME_LANGUAGE = {"Dockerfile": "dockerfile", "Makefile": "makefile"}


def git(git_dir: Path, *args: str) -> str:
    return subprocess.run(
        ["git", f"--git-dir={git_dir}", *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def languages(name: str) -> set[str]:
    found = set()
    for path, _ in sample_files(name):
        language = FILENAME_LANGUAGE.get(Path(path).name) or EXTENSION_LANGUAGE.get(Path(path).suffix)
        if language:
            found.add(language)
    return found


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_sample_repos(tmp_path_factory.mktemp("samples"))


# --- determinism --------------------------------------------------------------------------------


def test_commit_shas_are_identical_across_builds_in_different_dirs(repos: dict[str, Path]) -> None:
    pins = samples_pins()  # builds again, in another temp dir
    assert list(pins) == NAMES
    for sample in SAMPLES:
        assert git(repos[sample.name], "rev-parse", f"refs/heads/{sample.branch}") == pins[sample.name]


def test_each_repo_has_one_commit_on_the_real_default_branch(repos: dict[str, Path]) -> None:
    assert set(repos) == set(NAMES)
    for sample in SAMPLES:
        git_dir = repos[sample.name]
        assert git_dir.name == f"{sample.name}.git"
        assert git(git_dir, "symbolic-ref", "HEAD") == f"refs/heads/{sample.branch}"
        assert git(git_dir, "rev-list", "--count", "HEAD") == "1"
        assert git(git_dir, "log", "-1", "--format=%an <%ae> %aI") == (
            f"{AUTHOR_NAME} <{AUTHOR_EMAIL}> {sample.date}"
        )
    branches = {s.name: s.branch for s in SAMPLES}
    assert branches.pop("flyte") == "main"
    assert set(branches.values()) == {"master"}


def _tree_sha(entries: dict[str, tuple[str, bytes]]) -> str:
    """Hash a tree the way git does, from {path: (mode, content)}; an independent check of our plumbing."""
    files = {n: v for n, v in entries.items() if "/" not in n}
    subdirs: dict[str, dict[str, tuple[str, bytes]]] = {}
    for name, value in entries.items():
        if "/" in name:
            head, rest = name.split("/", 1)
            subdirs.setdefault(head, {})[rest] = value
    items = []
    for name, (mode, content) in files.items():
        blob = hashlib.sha1(b"blob %d\0" % len(content) + content).digest()
        items.append((name.encode(), mode.lstrip("0").encode(), blob))
    for name, sub in subdirs.items():
        items.append((name.encode() + b"/", b"40000", bytes.fromhex(_tree_sha(sub))))
    # git sorts entries by name, with directory names compared as if they ended in "/".
    body = b"".join(mode + b" " + name.rstrip(b"/") + b"\0" + sha for name, mode, sha in sorted(items))
    return hashlib.sha1(b"tree %d\0" % len(body) + body).hexdigest()


def test_commit_sha_depends_only_on_content_and_fixed_metadata() -> None:
    """Recompute every commit SHA in pure Python: nothing machine-specific can be in it."""
    pins = samples_pins()
    for sample in SAMPLES:
        entries = {}
        for path, full in sample_files(sample.name):
            content = full.read_bytes()
            entries[path] = (file_mode(content), content)
        ident = f"{AUTHOR_NAME} <{AUTHOR_EMAIL}> {sample.git_date}"
        commit = (
            f"tree {_tree_sha(entries)}\nauthor {ident}\ncommitter {ident}\n\n"
            f"{sample.name}: Flyte Llama sample snapshot\n"
        ).encode()
        assert hashlib.sha1(b"commit %d\0" % len(commit) + commit).hexdigest() == pins[sample.name]


def test_rerun_on_the_same_dest_verifies_instead_of_failing(tmp_path: Path) -> None:
    first = make_sample_repos(tmp_path, ["flytekit"])
    again = make_sample_repos(tmp_path, ["flytekit"])
    assert first == again == {"flytekit": tmp_path / "flytekit.git"}


def test_dest_occupied_by_something_else_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "flyteidl.git").mkdir()
    (tmp_path / "flyteidl.git" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a bare git repo"):
        make_sample_repos(tmp_path, ["flyteidl"])
    with pytest.raises(KeyError, match="unknown sample"):
        make_sample_repos(tmp_path, ["flytekitt"])


def test_files_read_back_by_sha_with_ls_tree_and_cat_file(repos: dict[str, Path]) -> None:
    for name, git_dir in repos.items():
        sha = git(git_dir, "rev-parse", "HEAD")
        listed = git(git_dir, "ls-tree", "-r", "--name-only", sha).splitlines()
        on_disk = dict(sample_files(name))
        assert listed == sorted(on_disk)
        path = listed[0]
        blob = subprocess.run(
            ["git", f"--git-dir={git_dir}", "cat-file", "blob", f"{sha}:{path}"],
            capture_output=True,
            check=True,
        ).stdout
        assert blob == on_disk[path].read_bytes()


def test_cli_prints_name_branch_split_and_sha(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path), "--only", "flyte", "flytesnacks"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert [row[:3] for row in rows] == [["flyte", "main", "train"], ["flytesnacks", "master", "test"]]
    assert all(len(row[3]) == 40 for row in rows)
    assert main([str(tmp_path), "--only", "nope"]) == 1


# --- content ------------------------------------------------------------------------------------

EXPECTED_LANGUAGES = {
    "flyte": {"go", "markdown", "yaml", "dockerfile", "makefile", "protobuf", "sql"},
    "flytekit": {"python", "markdown", "restructuredtext", "toml"},
    "flytepropeller": {"go", "markdown", "makefile"},
    "flyteplugins": {"go", "markdown"},
    "flyteidl": {"protobuf", "go", "python", "markdown", "makefile"},
    "flyteadmin": {"go", "sql", "yaml", "dockerfile", "markdown"},
    "flyteconsole": {"typescript", "tsx", "javascript", "json", "markdown"},
    "flytesnacks": {"python", "notebook", "markdown"},
    "flyte-conference-talks": {"python", "notebook", "markdown"},
}


@pytest.mark.parametrize("name", NAMES)
def test_every_repo_has_the_expected_languages(name: str) -> None:
    assert EXPECTED_LANGUAGES[name] <= languages(name)


def test_roles_match_the_real_repos() -> None:
    assert [s.name for s in SAMPLES if s.split == "test"] == ["flytesnacks", "flyte-conference-talks"]
    assert {s.split for s in SAMPLES} == {"train", "test"}


def test_total_size_stays_modest() -> None:
    total = sum(full.stat().st_size for name in NAMES for _, full in sample_files(name))
    assert 50_000 < total < 500_000


PYTHON_FILES = sorted(REPOS_DIR.rglob("*.py"))
TREE_SITTER = {".go": "go", ".ts": "typescript", ".tsx": "tsx", ".proto": "proto", ".sql": "sql"}


@pytest.mark.parametrize("path", PYTHON_FILES, ids=lambda p: str(p.relative_to(REPOS_DIR)))
def test_python_files_parse(path: Path) -> None:
    source = path.read_bytes()
    ast.parse(source, filename=str(path))
    assert not get_parser("python").parse(source).root_node.has_error


def test_other_code_parses_with_tree_sitter() -> None:
    checked = 0
    for path in sorted(REPOS_DIR.rglob("*")):
        language = TREE_SITTER.get(path.suffix)
        if language:
            tree = get_parser(language).parse(path.read_bytes())
            assert not tree.root_node.has_error, path
            checked += 1
    assert checked > 30


def test_notebooks_are_valid_with_code_markdown_and_an_output() -> None:
    notebooks = sorted(REPOS_DIR.rglob("*.ipynb"))
    assert {p.relative_to(REPOS_DIR).parts[0] for p in notebooks} == {"flytesnacks", "flyte-conference-talks"}
    for path in notebooks:
        cells = json.loads(path.read_text())["cells"]
        assert {c["cell_type"] for c in cells} == {"code", "markdown"}
        assert any(c.get("outputs") for c in cells), path
        for cell in cells:
            if cell["cell_type"] == "code":
                ast.parse("".join(cell["source"]))


# --- planted cases (see samples/README.md) ------------------------------------------------------

# (original, copy) paths relative to samples/repos/.
EXACT_COPIES = [
    (f"{component}/{path}", f"flyte/{component}/{path}")
    for component, path in [
        ("flytepropeller", "pkg/controller/controller.go"),
        ("flytepropeller", "pkg/controller/config/config.go"),
        ("flytepropeller", "pkg/controller/nodes/executor_test.go"),
        ("flyteadmin", "pkg/server/handlers.go"),
        ("flyteadmin", "pkg/repositories/migrations/sql/0001_init.sql"),
        ("flyteplugins", "go/tasks/pluginmachinery/core/phase.go"),
        ("flyteidl", "protos/flyteidl/core/literals.proto"),
        ("flyteidl", "gen/pb-go/flyteidl/core/literals.pb.go"),
    ]
] + [("flytekit/flytekit/image_spec.py", "flytesnacks/examples/_shared/image_spec.py")]  # train → test
NEAR_COPIES = [
    (f"{component}/{path}", f"flyte/{component}/{path}")
    for component, path in [
        ("flytepropeller", "pkg/controller/nodes/executor.go"),
        ("flyteplugins", "go/tasks/plugins/k8s/pod/plugin.go"),
        ("flyteadmin", "pkg/manager/execution_manager.go"),
        ("flyteidl", "protos/flyteidl/core/workflow.proto"),
    ]
] + [("flytekit/tests/test_resources.py", "flytesnacks/examples/testing/test_basics.py")]  # train → test


@pytest.mark.parametrize(("original", "copy"), EXACT_COPIES)
def test_planted_exact_copies_are_byte_identical(original: str, copy: str) -> None:
    assert (REPOS_DIR / original).read_bytes() == (REPOS_DIR / copy).read_bytes()


@pytest.mark.parametrize(("original", "copy"), NEAR_COPIES)
def test_planted_near_copies_differ_a_little(original: str, copy: str) -> None:
    a, b = (REPOS_DIR / original).read_text(), (REPOS_DIR / copy).read_text()
    assert a != b
    assert difflib.SequenceMatcher(None, a, b).ratio() > 0.8


PLANTED_SECRETS = [
    ("flyteadmin/flyteadmin_config.yaml", "AKIAFAKESAMPLE7EXMPL"),
    ("flytesnacks/examples/huggingface/hf_finetune.py", "hf_FAKEsampleTOKENflyteLLAMAnotREAL42"),
    ("flytekit/flytekit/__init__.py", "ops-oncall@flyte-llama-samples.dev"),
    ("flytepropeller/pkg/webhook/certs_test.go", "-----BEGIN RSA PRIVATE KEY-----"),
]


@pytest.mark.parametrize(("path", "secret"), PLANTED_SECRETS)
def test_planted_fake_secrets_are_present(path: str, secret: str) -> None:
    assert secret in (REPOS_DIR / path).read_text()


def test_files_the_filters_must_drop_are_present() -> None:
    def text(path: str) -> str:
        return (REPOS_DIR / path).read_text()

    assert text("flyteidl/gen/pb-go/flyteidl/core/literals.pb.go").startswith(
        "// Code generated by protoc-gen-go. DO NOT EDIT."
    )
    assert "DO NOT EDIT" in text("flyteidl/gen/pb_python/flyteidl/core/literals_pb2.py")
    assert "DO NOT EDIT" in text("flytepropeller/pkg/controller/nodes/mocks/task_handler.go")
    assert json.loads(text("flyteconsole/package-lock.json"))["lockfileVersion"] == 3
    assert max(len(line) for line in text("flyteconsole/dist/main.min.js").splitlines()) > 1000
    assert (REPOS_DIR / "flytepropeller/go.sum").is_file()
    assert (REPOS_DIR / "flytepropeller/vendor/github.com/sampleorg/backoff/backoff.go").is_file()
