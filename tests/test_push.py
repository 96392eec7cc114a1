"""push.py / model_card.publish against a recording fake of HfApi: nothing here touches the network."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import httpx2
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from huggingface_hub import constants
from huggingface_hub.hf_api import GitRefInfo, GitRefs, RepoFile, RepoUrl
from test_model_card import CODE_LLAMA, make_run  # tests/ is on sys.path (pytest rootdir-relative import)

import push
from model_card.publish import PushError, check_online, publish
from model_card.stage import stage_model

TOKEN = "hf_fakeTOKENdoNotLeak0123456789"
LFS = (".safetensors", ".parquet", ".png")


class FakeHub:
    """Records every call; keeps one main branch as {path: bytes}, like the Hub would."""

    def __init__(self, token: str | None = None, fail_on: str | None = None):
        self.token, self.fail_on = token, fail_on
        self.calls: list[tuple[str, dict]] = []
        self.files: dict[str, bytes] = {".gitattributes": b"*.safetensors filter=lfs\n"}
        self.head, self.tags, self.commits = "0" * 40, {}, []

    def _call(self, name: str, **kwargs) -> None:
        self.calls.append((name, kwargs))
        if name == self.fail_on:
            raise httpx2.ConnectError("[Errno 101] Network is unreachable")

    def create_repo(self, repo_id, *, repo_type=None, private=None, exist_ok=False):
        self._call("create_repo", repo_id=repo_id, repo_type=repo_type, private=private, exist_ok=exist_ok)
        return RepoUrl(f"https://huggingface.co/{'datasets/' if repo_type == 'dataset' else ''}{repo_id}")

    def list_repo_tree(self, repo_id, *, repo_type=None, recursive=False):
        self._call("list_repo_tree", repo_id=repo_id, recursive=recursive)
        for path, data in self.files.items():
            git = hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()
            if path.endswith(LFS):  # an LFS file's blob id is its pointer's, not its content's
                lfs = {"size": len(data), "oid": hashlib.sha256(data).hexdigest(), "pointerSize": 134}
                yield RepoFile(
                    path=path, size=len(data), oid=hashlib.sha1(path.encode()).hexdigest(), lfs=lfs
                )
            else:
                yield RepoFile(path=path, size=len(data), oid=git)

    def list_repo_refs(self, repo_id, *, repo_type=None):
        self._call("list_repo_refs", repo_id=repo_id)
        tags = [GitRefInfo(name=t, ref=f"refs/tags/{t}", target_commit=c) for t, c in self.tags.items()]
        return GitRefs(
            branches=[GitRefInfo(name="main", ref="refs/heads/main", target_commit=self.head)],
            converts=[],
            tags=tags,
        )

    def create_commit(self, repo_id, *, operations, commit_message, repo_type=None, create_pr=None):
        operations = list(operations)
        self._call("create_commit", operations=operations, repo_type=repo_type, create_pr=create_pr)
        oid = hashlib.sha1(f"{len(self.commits)}{commit_message}".encode()).hexdigest()
        self.commits.append(operations)
        if not create_pr:
            for op in operations:
                if hasattr(op, "path_or_fileobj"):
                    self.files[op.path_in_repo] = Path(op.path_or_fileobj).read_bytes()
                else:
                    self.files.pop(op.path_in_repo)
            self.head = oid
        return SimpleNamespace(
            oid=oid, pr_url=f"https://huggingface.co/{repo_id}/discussions/1" if create_pr else None
        )

    def create_tag(self, repo_id, *, tag, revision=None, repo_type=None):
        self._call("create_tag", tag=tag, revision=revision, repo_type=repo_type)
        self.tags[tag] = revision

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


def push_with(api: FakeHub, folder: Path, kind: str = "model", echo=None, **kwargs):
    lines: list[str] = []
    result = publish(
        folder,
        "flyte-test/flyte-llama-tiny" if kind == "model" else "flyte-test/flyte-llama-corpus",
        kind,
        api=api,
        echo=echo or lines.append,
        online_check=lambda: None,
        token_getter=lambda: TOKEN,
        **kwargs,
    )
    return result, "\n".join(lines)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("run"))


@pytest.fixture
def staged(run_dir, tmp_path) -> Path:
    """A staged model folder, plus junk a careless run might leave in it."""
    out = stage_model(
        run_dir / "adapter",
        run_dir / "eval_results.json",
        tmp_path / "hub" / "flyte-llama-tiny",
        repo_id="flyte-test/flyte-llama-tiny",
        base_model_id=CODE_LLAMA,
    )
    (out / "training_args.bin").write_bytes(b"\x80\x04pickle")
    (out / "optimizer.pt").write_bytes(b"\x80\x04pickle")
    (out / "checkpoints" / "checkpoint-5").mkdir(parents=True)
    (out / "checkpoints" / "checkpoint-5" / "adapter_model.safetensors").write_bytes(b"ckpt")
    (out / "notes.txt").write_text("scratch")
    return out


def make_dataset(root: Path) -> Path:
    """A Hub dataset folder (docs/ARCHITECTURE.md §2): Parquet shards, README with `configs:`, manifest."""
    shards = {}
    for split in ("train", "validation", "test"):
        path = root / "data" / f"{split}-00000-of-00001.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        table = pa.table(
            {"content": [f"def {split}_{i}(): pass" for i in range(3)], "repo": ["flytekit"] * 3}
        )
        pq.write_table(table, path)
        shards[f"data/{split}-00000-of-00001.parquet"] = hashlib.sha256(path.read_bytes()).hexdigest()
    configs = [
        {
            "config_name": "default",
            "data_files": [
                {"split": s, "path": f"data/{s}-*.parquet"} for s in ("train", "validation", "test")
            ],
        }
    ]
    (root / "README.md").write_text("---\n" + json.dumps({"configs": configs}) + "\n---\n# corpus\n")
    manifest = {"name": "flyte-llama-corpus", "version": "1.0.0", "shards": shards}
    (root / "manifest.json").write_text(json.dumps(manifest, sort_keys=True))
    return root


# ---------------------------------------------------------------- the plan and the commit


def test_model_push_is_one_commit_of_allow_listed_files(staged):
    hub = FakeHub()
    result, out = push_with(hub, staged)
    assert hub.names() == ["create_repo", "list_repo_tree", "list_repo_refs", "create_commit"]
    assert hub.calls[0][1]["exist_ok"] is True
    assert len(hub.commits) == 1
    uploaded = sorted(op.path_in_repo for op in hub.commits[0])
    assert uploaded == [
        "README.md",
        "adapter_config.json",
        "adapter_model.safetensors",
        "eval_results.json",
        "infilling_tasks.jsonl",
        "plots/loss_curve.png",
        "plots/perplexity_by_repo.png",
        "recipe.yaml",
        "tokenizer.json",
        "tokenizer_config.json",
        "training_log.json",
        "version.json",
    ]
    assert hub.files["README.md"] == (staged / "README.md").read_bytes()
    for path, reason in [
        ("training_args.bin", "pickle"),
        ("optimizer.pt", "pickle"),
        ("checkpoints/checkpoint-5/adapter_model.safetensors", "checkpoint"),
        ("notes.txt", "not on the allow-list"),
    ]:
        assert f"exclude  {path}" in out and reason in out.split(f"exclude  {path}")[1].splitlines()[0]
    assert result.commit == hub.head and f"commit {result.commit}" in out
    assert "url https://huggingface.co/flyte-test/flyte-llama-tiny" in out


def test_second_identical_push_makes_no_commit_and_changes_upload_only_the_diff(staged):
    hub = FakeHub()
    push_with(hub, staged)
    result, out = push_with(hub, staged)
    assert len(hub.commits) == 1 and result.commit is None
    assert "nothing changed: no commit" in out and "same     adapter_model.safetensors" in out

    (staged / "recipe.yaml").write_text("name: tiny\nlearning_rate: 0.002\n")
    (staged / "plots" / "loss_curve.png").unlink()
    hub.files["plots/stale.png"] = b"old plot"  # allow-listed remote file the folder no longer has
    push_with(hub, staged)
    ops = {(type(op).__name__, op.path_in_repo) for op in hub.commits[-1]}
    assert ops == {
        ("CommitOperationAdd", "recipe.yaml"),
        ("CommitOperationDelete", "plots/loss_curve.png"),
        ("CommitOperationDelete", "plots/stale.png"),
    }
    assert ".gitattributes" in hub.files  # outside the allow-list: never deleted


def test_tag_points_at_the_commit_and_a_tag_elsewhere_fails_before_committing(staged):
    hub = FakeHub()
    result, out = push_with(hub, staged, tag="v1.0.0")
    assert hub.tags == {"v1.0.0": result.commit} and f"tag v1.0.0 -> {result.commit}" in out
    push_with(hub, staged, tag="v1.0.0")  # same content, same tag: nothing to do
    assert len(hub.commits) == 1 and hub.names().count("create_tag") == 1

    (staged / "recipe.yaml").write_text("name: tiny\nlearning_rate: 0.003\n")
    with pytest.raises(PushError, match=r"tag v1\.0\.0 already exists"):
        push_with(hub, staged, tag="v1.0.0")
    assert len(hub.commits) == 1  # nothing half-published
    result, _ = push_with(hub, staged, tag="v1.0.1")
    assert hub.tags["v1.0.1"] == result.commit != hub.tags["v1.0.0"]


def test_create_pr_is_passed_through_and_main_is_untouched(tmp_path):
    hub = FakeHub()
    result, out = push_with(hub, make_dataset(tmp_path / "ds"), kind="dataset", create_pr=True, private=True)
    assert hub.calls[0] == (
        "create_repo",
        {
            "repo_id": "flyte-test/flyte-llama-corpus",
            "repo_type": "dataset",
            "private": True,
            "exist_ok": True,
        },
    )
    commit = next(kw for name, kw in hub.calls if name == "create_commit")
    assert commit["create_pr"] is True and commit["repo_type"] == "dataset"
    assert sorted(op.path_in_repo for op in commit["operations"]) == [
        "README.md",
        "data/test-00000-of-00001.parquet",
        "data/train-00000-of-00001.parquet",
        "data/validation-00000-of-00001.parquet",
        "manifest.json",
    ]
    assert list(hub.files) == [".gitattributes"] and "pull request https://huggingface.co/" in out
    assert result.pr_url and "url https://huggingface.co/datasets/flyte-test/flyte-llama-corpus" in out
    with pytest.raises(PushError, match="merge the PR"):
        push_with(hub, tmp_path / "ds", kind="dataset", create_pr=True, tag="v1.0.0")


# ---------------------------------------------------------------- dry run


def test_dry_run_lists_files_sizes_and_checks_offline(staged, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    hub = FakeHub()
    result, out = push_with(hub, staged, dry_run=True, tag="v1.0.0")
    assert hub.calls == [] and result.problems == []
    size = (staged / "adapter_model.safetensors").stat().st_size
    assert f"upload   adapter_model.safetensors  ({size:,} bytes)" in out
    assert "exclude  training_args.bin  (refused: pickle" in out
    assert "create_tag(v1.0.0)" in out and "card/folder checks: OK" in out

    # through the CLI, with no token and offline mode on: still works, exit code 0
    code = push.main(
        [
            "dataset",
            "--folder",
            str(make_dataset(tmp_path / "ds")),
            "--repo-id",
            "o/flyte-llama-corpus",
            "--dry-run",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0 and "upload   data/train-00000-of-00001.parquet" in printed and "checks: OK" in printed

    (staged / "eval_results.json").write_text(json.dumps({"perplexity": {}}))
    code = push.main(
        ["model", "--folder", str(staged), "--repo-id", "flyte-test/flyte-llama-tiny", "--dry-run"]
    )
    assert code == 1 and "differs from eval_results.json" in capsys.readouterr().out


# ---------------------------------------------------------------- errors: fast, clear, nothing written


@pytest.mark.parametrize(
    "missing", ["README.md", "adapter_config.json", "adapter_model.safetensors", "eval_results.json"]
)
def test_incomplete_model_folder_fails_before_any_api_call(staged, missing):
    (staged / missing).unlink()
    hub = FakeHub()
    with pytest.raises(PushError, match="incomplete") as err:
        push_with(hub, staged)
    assert (missing if missing != "adapter_model.safetensors" else "*.safetensors") in str(err.value)
    assert hub.calls == []


def test_local_base_model_path_is_refused(run_dir, tmp_path):
    staged = stage_model(
        run_dir / "adapter",
        run_dir / "eval_results.json",
        tmp_path / "m",
        repo_id="flyte-test/flyte-llama-tiny",
    )
    with pytest.raises(PushError, match="--base-model-id"):
        push_with(FakeHub(), staged)


@pytest.mark.parametrize(
    "damage", ["sha", "missing_shard", "unlisted_shard", "unlisted_infilling", "no_configs", "no_manifest"]
)
def test_broken_dataset_folder_fails_before_any_api_call(tmp_path, damage):
    folder = make_dataset(tmp_path / "ds")
    shard = folder / "data" / "train-00000-of-00001.parquet"
    expected = {
        "sha": "sha256 differs",
        "missing_shard": "is missing",
        "unlisted_shard": "not listed",
        "unlisted_infilling": "infilling/test-00000-of-00001.parquet is not listed",
        "no_configs": "no YAML `configs:`",
        "no_manifest": "missing manifest.json",
    }[damage]
    if damage == "sha":
        shard.write_bytes(shard.read_bytes() + b"\0")
    elif damage == "missing_shard":
        shard.unlink()
    elif damage == "unlisted_shard":
        shutil.copy(shard, folder / "data" / "train-extra.parquet")
    elif damage == "unlisted_infilling":  # the `infilling` config's shard is checked like the splits'
        (folder / "infilling").mkdir()
        shutil.copy(shard, folder / "infilling" / "test-00000-of-00001.parquet")
    elif damage == "no_configs":
        (folder / "README.md").write_text("---\nlicense: apache-2.0\n---\n")
    else:
        (folder / "manifest.json").unlink()
    hub = FakeHub()
    with pytest.raises(PushError, match=expected):
        push_with(hub, folder, kind="dataset")
    assert hub.calls == []


def test_no_token_is_a_clear_error(staged, monkeypatch, tmp_path):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    hub = FakeHub()
    with pytest.raises(PushError, match=r"huggingface-cli login.*HF_TOKEN"):
        publish(
            staged,
            "flyte-test/flyte-llama-tiny",
            "model",
            api=hub,
            online_check=lambda: pytest.fail("too late"),
        )
    assert hub.calls == []


def test_offline_and_unreachable_fail_fast(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PushError, match="HF_HUB_OFFLINE"):
        check_online()
    monkeypatch.delenv("HF_HUB_OFFLINE")
    # huggingface_hub reads HF_HUB_OFFLINE once, at import (CI sets it): undo that too for this check.
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    start = time.monotonic()
    with pytest.raises(PushError, match="cannot reach"):
        check_online("http://127.0.0.1:9", timeout=1.0)  # discard port: connection refused
    assert time.monotonic() - start < 5


def test_connection_lost_mid_push_is_a_clear_error(staged):
    hub = FakeHub(fail_on="create_commit")
    with pytest.raises(PushError, match="run the push again"):
        push_with(hub, staged)
    assert list(hub.files) == [".gitattributes"]


def test_token_is_never_printed_or_written(staged, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    made: list[FakeHub] = []
    monkeypatch.setattr("model_card.publish.HfApi", lambda token: made.append(FakeHub(token)) or made[-1])
    monkeypatch.setattr("model_card.publish.check_online", lambda: None)
    before = {p: p.read_bytes() for p in staged.rglob("*") if p.is_file()}
    assert (
        push.main(
            ["model", "--folder", str(staged), "--repo-id", "flyte-test/flyte-llama-tiny", "--tag", "v1.0.0"]
        )
        == 0
    )
    assert made[0].token == TOKEN and len(made[0].commits) == 1  # the token reached HfApi, and only HfApi
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("model_card.publish.check_online", check_online)
    assert push.main(["model", "--folder", str(staged), "--repo-id", "flyte-test/flyte-llama-tiny"]) == 2
    captured = capsys.readouterr()
    assert "HF_HUB_OFFLINE" in captured.err
    assert TOKEN not in captured.out + captured.err
    assert {p: p.read_bytes() for p in staged.rglob("*") if p.is_file()} == before
