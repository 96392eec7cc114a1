"""Hostile refs, URLs, names, numbers and objects: each is refused with one `error:` line and exit 2,
before any work (nothing cloned, cached or written), and no git option or `ext::` command ever runs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from gitrepos import GitRepo, write_config

from dataset_builder.__main__ import main
from dataset_builder.config import ConfigError
from dataset_builder.gitread import GitError, mask_credentials
from dataset_builder.sources import SourceError

SECRET = "s3cr3t-Pa55"
Z_CONTENT = "def z() -> int:\n    return 26\n"  # pkg/z.py sorts last: its blob is the last one read


@pytest.fixture()
def repos(tmp_path: Path) -> dict:
    train = GitRepo.init(tmp_path / "src" / "trainrepo")
    train.commit({"pkg/a.py": "def a() -> int:\n    return 1\n", "pkg/z.py": Z_CONTENT})
    test = GitRepo.init(tmp_path / "src" / "testrepo")
    test.commit({"ex/hello.py": "print('hello')\n"})
    for repo in (train, test):  # serve partial clones and blobs by id, as GitHub does
        repo.git("config", "uploadpack.allowFilter", "true")
        repo.git("config", "uploadpack.allowAnySHA1InWant", "true")
    pins = {"trainrepo": train.head(), "testrepo": test.head()}
    urls = {"trainrepo": train.url(), "testrepo": test.url()}
    config = write_config(tmp_path / "c.yaml", pins, urls=urls)
    return {"train": train, "test": test, "pins": pins, "urls": urls, "tmp": tmp_path, "config": config}


def _run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err
    return code, err


def _build(repos: dict, capsys, *extra: str, cache: str = "cache") -> tuple[int, str]:
    tmp = repos["tmp"]
    args = ["--config", str(repos["config"]), "--out", str(tmp / "out"), "--cache-dir", str(tmp / cache)]
    return _run(capsys, "build", *args, "--no-progress", *extra)


def _one_error(code: int, err: str, *needles: str) -> str:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    return err


def _refused_before_any_work(repos: dict) -> None:
    tmp = repos["tmp"]
    assert not (tmp / "out").exists() and not (tmp / "cache").exists()
    assert sorted(p.name for p in tmp.iterdir()) == ["c.yaml", "src"]


def test_ref_is_never_an_option(repos: dict, capsys) -> None:
    marker = repos["tmp"] / "MARKER"
    attack = f"repos.trainrepo.ref=--upload-pack=touch {marker};git-upload-pack"
    # An unknown pin makes the build fetch the ref: before the fix git ran the upload-pack command.
    code, err = _build(repos, capsys, "--set", f"repos.trainrepo.commit={'a' * 40}", "--set", attack)
    _one_error(code, err, "(trainrepo): ref '--upload-pack=", "starts with '-'", "branch or tag name")
    assert not marker.exists()
    _refused_before_any_work(repos)
    for bad in ("main:refs/heads/x", "ma in", "x..y", "a@{1}"):
        code, err = _build(repos, capsys, "--set", f"repos.trainrepo.ref={bad}")
        _one_error(code, err, f"ref {bad!r}", "not a valid branch or tag name")


def test_url_is_never_an_option_or_a_command(repos: dict, capsys) -> None:
    tmp = repos["tmp"]
    marker = tmp / "MARKER"
    option = f"--upload-pack=touch {marker};git-upload-pack {repos['urls']['trainrepo']}"
    code, err = _build(repos, capsys, "--source", f"trainrepo={option}")
    _one_error(code, err, "--source trainrepo=--upload-pack", "starts with '-'", "Fix: pass a URL")
    ext = f"ext::sh -c touch% {marker}"
    code, err = _build(repos, capsys, "--source", f"trainrepo={ext}")
    _one_error(code, err, "transport::address", "ext::")
    code, err = _build(repos, capsys, "--set", f"repos.trainrepo.url={ext}")
    _one_error(code, err, "repos[0] (trainrepo): url 'ext::", "transport::address")
    code, err = _build(repos, capsys, "--set", "repos.trainrepo.url=ssh://-oProxyCommand=touch%20M/x")
    _one_error(code, err, "host starting with '-'")
    code, err = _build(repos, capsys, "--set", "repos.trainrepo.url=ftp://example.com/x.git")
    _one_error(code, err, "scheme ftp://")
    code, err = _build(repos, capsys, "--source", f"trainrepo={tmp / 'nowhere'}")
    _one_error(code, err, "neither a URL", "nor an existing local path")
    assert not marker.exists()
    _refused_before_any_work(repos)


def test_hostile_mirror_remote_cannot_run_ext(repos: dict, capsys) -> None:
    """A mirror's own config may allow ext:: and point its promisor remote at a command: never run it."""
    tmp = repos["tmp"]
    marker = tmp / "MARKER"
    mirrors = tmp / "mirrors"
    mirrors.mkdir()
    repos["train"].git(
        "clone",
        "--quiet",
        "--bare",
        "--filter=blob:none",
        repos["urls"]["trainrepo"],
        str(mirrors / "trainrepo.git"),
    )
    repos["test"].clone_bare(mirrors / "testrepo.git")
    mirror = GitRepo(mirrors / "trainrepo.git")
    mirror.git("config", "remote.origin.url", f"ext::sh -c touch% {marker}")
    mirror.git("config", "protocol.ext.allow", "always")
    code, err = _build(repos, capsys, "--mirrors", str(mirrors))
    _one_error(code, err, "trainrepo: fetching", "transport 'ext' not allowed")
    assert not marker.exists()
    assert not (tmp / "out").exists()


def test_credentials_are_masked_everywhere(repos: dict, capsys) -> None:
    url = f"https://builder:{SECRET}@127.0.0.1:9/flyteorg/x.git"
    code, err = _build(repos, capsys, "--source", f"trainrepo={url}")
    _one_error(code, err, "trainrepo: clone https://***@127.0.0.1:9/flyteorg/x.git failed")
    assert SECRET not in err and "builder" not in err
    # In the config the URL would be published (manifest, card): refused, and masked in the message.
    code, err = _build(repos, capsys, "--set", f"repos.trainrepo.url={url}")
    _one_error(code, err, "carries credentials", "credential helper", "https://***@127.0.0.1")
    assert SECRET not in err
    token = "https://ghp_abcdefTOKEN@github.com/x.git"
    code, err = _build(repos, capsys, "--set", f"repos.trainrepo.url={token}")
    _one_error(code, err, "carries credentials")
    assert "ghp_abcdefTOKEN" not in err
    # The one helper, as every error class uses it (git's own stderr echoes the URL in quotes).
    text = f"fatal: unable to access 'https://u:{SECRET}@h/x.git/' and ssh://git@h/y, https://u:p@ss@h/z"
    masked = mask_credentials(text)
    assert SECRET not in masked and "p@ss" not in masked and "https://***@h/z" in masked
    assert "'https://***@h/x.git/'" in masked and "ssh://***@h/y" in masked
    for cls in (GitError, SourceError, ConfigError):
        assert SECRET not in str(cls(text))
    assert not (repos["tmp"] / "out").exists()
    assert list((repos["tmp"] / "cache" / "repos").iterdir()) == []  # the failed clone left nothing


def _loose_object(repo: Path, sha: str) -> Path:
    return repo / "objects" / sha[:2] / sha[2:]


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_last_blob_is_an_error_and_never_cached(repos: dict, capsys, damage: str) -> None:
    tmp = repos["tmp"]
    mirrors = tmp / "mirrors"
    bare = repos["train"].clone_bare(mirrors / "trainrepo.git")
    repos["test"].clone_bare(mirrors / "testrepo.git")
    sha = repos["train"].git("rev-parse", "HEAD:pkg/z.py").strip()  # the last blob read
    obj = _loose_object(bare, sha)
    good = obj.read_bytes()
    os.chmod(obj, 0o644)
    obj.write_bytes(good[: len(good) // 2] if damage == "truncated" else b"garbage")
    code, err = _build(repos, capsys, "--mirrors", str(mirrors))
    _one_error(code, err, f"trainrepo: git object {sha} (pkg/z.py)", "fsck")
    assert not (tmp / "out").exists()
    assert not list((tmp / "cache" / "per_repo" / "trainrepo").glob("*.parquet"))  # nothing cached
    obj.write_bytes(good)  # repaired: the same cache now gives the real content
    code, err = _build(repos, capsys, "--mirrors", str(mirrors))
    assert code == 0, err
    import pyarrow.parquet as pq

    rows = [r for f in (tmp / "out" / "data").glob("*.parquet") for r in pq.read_table(f).to_pylist()]
    z = [r for r in rows if r["path"] == "pkg/z.py"]
    assert z and z[0]["content"] == Z_CONTENT


def test_names_cannot_escape_the_cache(repos: dict, capsys) -> None:
    tmp = repos["tmp"]
    code, err = _build(repos, capsys, "--set", "name=../../escaped")
    _one_error(code, err, "name '../../escaped' becomes a file/folder name", "e.g. flyte-llama-corpus")
    code, err = _build(repos, capsys, "--set", "repos.trainrepo.name=../escaped")
    _one_error(code, err, "name '../escaped' becomes a file/folder name")
    code, err = _build(repos, capsys, "--set", "hub_repo_id=../x")
    _one_error(code, err, "hub_repo_id '../x' is not a Hub id")
    assert not list(tmp.parent.glob("escaped*")) and not list(tmp.glob("**/escaped*"))
    _refused_before_any_work(repos)


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("filters.max_mean_line_chars=-1", "filters.max_mean_line_chars must be > 0, got -1.0"),
        ("filters.max_mean_line_chars=.nan", "filters.max_mean_line_chars must be > 0, got nan"),
        ("filters.max_line_chars=0", "filters.max_line_chars must be > 0"),
        ("filters.min_alnum_fraction=1.5", "filters.min_alnum_fraction must be in [0, 1]"),
        ("splits.validation_fraction=1", "splits.validation_fraction must be in [0, 1)"),
        ("dedup.threshold=0", "dedup.threshold must be in (0, 1]"),
        ("dedup.seed=-1", "dedup.seed must be in 0..2**32-1"),
        ("export.row_group_size=0", "export.row_group_size must be > 0"),
        ("repos.trainrepo.commit=abc123", "commit 'abc123' is not a full 40-hex lowercase SHA"),
        (f"repos.trainrepo.commit={'A' * 40}", "is not a full 40-hex lowercase SHA"),
    ],
)
def test_numbers_and_pins_are_checked_at_load(repos: dict, capsys, override: str, needle: str) -> None:
    code, err = _build(repos, capsys, "--set", override)
    _one_error(code, err, needle)
    _refused_before_any_work(repos)


def test_pin_never_writes_a_blob_as_a_commit(repos: dict, capsys) -> None:
    tmp = repos["tmp"]
    blob = repos["train"].git("rev-parse", "HEAD:pkg/a.py").strip()
    repos["train"].git("tag", "blobtag", blob)
    config = repos["config"]
    data = yaml.safe_load(config.read_text())
    data["repos"][0]["ref"] = "blobtag"
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    before = config.read_text()
    code, err = _run(capsys, "pin", "--config", str(config), "--write")  # via ls-remote on the URL
    _one_error(code, err, "trainrepo: ref 'blobtag'", "points to a blob, not a commit")
    mirrors = tmp / "mirrors"
    repos["train"].clone_bare(mirrors / "trainrepo.git")
    repos["test"].clone_bare(mirrors / "testrepo.git")
    code, err = _run(capsys, "pin", "--config", str(config), "--write", "--mirrors", str(mirrors))
    _one_error(code, err, "trainrepo: ref 'blobtag'", "points to a blob, not a commit")
    assert config.read_text() == before
    assert blob not in config.read_text()
    # An annotated tag is peeled to its commit, and a commit tag still pins.
    repos["train"].tag("v1.0.0", annotated=True)
    data["repos"][0]["ref"] = "v1.0.0"
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    code, err = _run(capsys, "pin", "--config", str(config), "--write")
    assert code == 0, err
    assert yaml.safe_load(config.read_text())["repos"][0]["commit"] == repos["pins"]["trainrepo"]
    assert json.dumps(yaml.safe_load(config.read_text()))  # still a loadable recipe
