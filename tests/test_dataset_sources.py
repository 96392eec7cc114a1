"""Sources: partial clone from a file:// URL, pin resolution and writing, and every error path."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from gitrepos import GitRepo, write_config

from dataset_builder.__main__ import main
from dataset_builder.config import load_config
from dataset_builder.gitread import git
from dataset_builder.pin import resolve_pins, rewrite_commits, write_pins
from dataset_builder.sources import SourceError, promisor_remote, resolve_sources

FILES = {
    "pkg/a.py": "def a() -> int:\n    return 1\n",
    "pkg/b.go": "package pkg\n\nfunc B() int { return 2 }\n",
    "vendor/x/x.go": "package x\n",
    "logo.png": b"\x89PNG\0\0",
}


@pytest.fixture()
def repos(tmp_path: Path) -> dict:
    train = GitRepo.init(tmp_path / "src" / "trainrepo")
    train.commit(FILES)
    test = GitRepo.init(tmp_path / "src" / "testrepo")
    test.commit({"ex/hello.py": "print('hello')\n"})
    for repo in (train, test):  # serve partial clones and blobs by id, as GitHub does
        repo.git("config", "uploadpack.allowFilter", "true")
        repo.git("config", "uploadpack.allowAnySHA1InWant", "true")
    pins = {"trainrepo": train.head(), "testrepo": test.head()}
    urls = {"trainrepo": train.url(), "testrepo": test.url()}
    return {"train": train, "test": test, "pins": pins, "urls": urls, "tmp": tmp_path}


def _build(config: Path, out: Path, cache: Path, *extra: str) -> int:
    return main(
        [
            "build",
            "--config",
            str(config),
            "--out",
            str(out),
            "--cache-dir",
            str(cache),
            "--no-progress",
            *extra,
        ]
    )


def test_partial_clone_from_file_url(repos: dict) -> None:
    tmp = repos["tmp"]
    config = write_config(tmp / "c.yaml", repos["pins"])  # URLs in the config are unreachable...
    src = [
        f"--source=trainrepo={repos['urls']['trainrepo']}",
        f"--source=testrepo={repos['urls']['testrepo']}",
    ]
    assert _build(config, tmp / "out", tmp / "cache", *src) == 0  # ...the --source file:// URLs are used
    clone = tmp / "cache" / "repos" / "trainrepo.git"
    assert promisor_remote(clone) == "origin"
    assert git(clone, "rev-parse", "--is-bare-repository").strip() == "true"
    m = json.loads((tmp / "out" / "manifest.json").read_text())
    assert (
        m["per_repo"]["trainrepo"]["train"]["files"]
        + m["per_repo"]["trainrepo"].get("validation", {}).get("files", 0)
        == 2
    )
    # The dropped vendored file and asset were never downloaded: only kept blobs were fetched.
    missing = git(clone, "rev-list", "--objects", "--missing=print", "--no-walk", repos["pins"]["trainrepo"])
    assert len([line for line in missing.splitlines() if line.startswith("?")]) == 2

    # A new commit upstream + a new pin: the cached clone is fetched incrementally.
    new = repos["train"].commit({"pkg/c.py": "C = 3\n"})
    config = write_config(tmp / "c.yaml", {**repos["pins"], "trainrepo": new})
    assert _build(config, tmp / "out", tmp / "cache", *src, "--no-progress") == 0
    m = json.loads((tmp / "out" / "manifest.json").read_text())
    assert sum(c["files"] for c in m["per_repo"]["trainrepo"].values()) == 3


def _assert_fails_fast(config: Path, tmp: Path, message: str, capsys, *extra: str) -> None:
    start = time.monotonic()
    assert _build(config, tmp / "out", tmp / "cache", *extra) == 2
    assert time.monotonic() - start < 20
    err = capsys.readouterr().err
    assert message in err, err
    assert not (tmp / "out").exists()
    assert [p for p in tmp.iterdir() if p.name.startswith(".out")] == []


def test_unreachable_url_fails_fast(repos: dict, capsys) -> None:
    tmp = repos["tmp"]
    config = write_config(tmp / "c.yaml", repos["pins"], urls={"trainrepo": (tmp / "nope").as_uri()})
    _assert_fails_fast(config, tmp, "trainrepo: clone", capsys)


def test_pinned_sha_missing_fails(repos: dict, capsys) -> None:
    tmp = repos["tmp"]
    config = write_config(tmp / "c.yaml", {**repos["pins"], "trainrepo": "a" * 40}, urls=repos["urls"])
    _assert_fails_fast(config, tmp, f"trainrepo: pinned commit {'a' * 40} is not in", capsys)
    mirrors = tmp / "mirrors"
    repos["train"].clone_bare(mirrors / "trainrepo")
    repos["test"].clone_bare(mirrors / "testrepo.git")
    _assert_fails_fast(config, tmp, "pin --write", capsys, "--mirrors", str(mirrors))


def test_missing_mirror_and_bad_source(repos: dict, capsys) -> None:
    tmp = repos["tmp"]
    config = write_config(tmp / "c.yaml", repos["pins"])
    (tmp / "mirrors").mkdir()
    _assert_fails_fast(config, tmp, "trainrepo: no git repo at", capsys, "--mirrors", str(tmp / "mirrors"))
    _assert_fails_fast(config, tmp, "unknown repo(s) ['nosuch']", capsys, "--source", "nosuch=/tmp")
    _assert_fails_fast(config, tmp, "is not a git repository", capsys, "--source", f"trainrepo={tmp}")


def test_failed_build_keeps_previous_output(repos: dict, capsys) -> None:
    tmp = repos["tmp"]
    good = write_config(tmp / "c.yaml", repos["pins"], urls=repos["urls"])
    assert _build(good, tmp / "out", tmp / "cache") == 0
    before = (tmp / "out" / "manifest.json").read_bytes()
    bad = write_config(tmp / "bad.yaml", {**repos["pins"], "testrepo": "b" * 40}, urls=repos["urls"])
    assert _build(bad, tmp / "out", tmp / "cache") == 2
    assert (tmp / "out" / "manifest.json").read_bytes() == before


def test_pin_resolves_refs_and_writes_preserving_comments(repos: dict, capsys) -> None:
    tmp = repos["tmp"]
    old = repos["pins"]["trainrepo"]
    config = write_config(tmp / "c.yaml", repos["pins"], urls=repos["urls"])
    config.write_text(config.read_text().replace("commit: " + old, "commit: " + old + "  # pinned by hand"))
    new = repos["train"].commit({"pkg/d.py": "D = 4\n"})
    cfg = load_config(config)
    assert resolve_pins(cfg) == {"trainrepo": new, "testrepo": repos["pins"]["testrepo"]}  # via ls-remote
    mirrors = tmp / "m"
    repos["train"].clone_bare(mirrors / "trainrepo.git")
    repos["test"].clone_bare(mirrors / "testrepo.git")
    assert resolve_pins(cfg, mirrors=mirrors)["trainrepo"] == new  # via rev-parse

    assert main(["pin", "--config", str(config)]) == 0
    assert "would change" in capsys.readouterr().out and load_config(config).repos[0].commit == old
    assert main(["pin", "--config", str(config), "--write"]) == 0
    text = config.read_text()
    assert text.startswith("# fixture recipe\n") and f"commit: {new}  # pinned by hand" in text
    assert load_config(config).repos[0].commit == new


def test_pin_errors(repos: dict) -> None:
    tmp = repos["tmp"]
    cfg = load_config(
        write_config(tmp / "c.yaml", repos["pins"], urls=repos["urls"]), ["repos.trainrepo.ref=nope"]
    )
    with pytest.raises(SourceError, match="trainrepo: ref 'nope' not found"):
        resolve_pins(cfg)
    with pytest.raises(SourceError, match="trainrepo: ref 'nope' not found"):
        resolve_pins(cfg, overrides={"trainrepo": str(repos["train"].path)})
    with pytest.raises(SourceError, match="could not find a `commit:` line"):
        rewrite_commits("repos:\n  - name: x\n", {"x": "c" * 40})
    path = tmp / "c.yaml"
    before = path.read_text()
    with pytest.raises(SourceError):
        write_pins(path, {"nosuch": "c" * 40})
    assert path.read_text() == before


def test_annotated_tag_resolves_to_commit(repos: dict) -> None:
    sha = repos["train"].tag("v1.0.0", annotated=True)
    cfg = load_config(
        write_config(repos["tmp"] / "c.yaml", repos["pins"], urls=repos["urls"]),
        ["repos.trainrepo.ref=v1.0.0"],
    )
    assert resolve_pins(cfg)["trainrepo"] == sha
    sources = resolve_sources(cfg, repos["tmp"] / "cache")
    assert sources["trainrepo"].partial
