"""Turn the sample file trees in ``samples/repos/`` into git repos with one deterministic commit each.

The corpus builder pins every source to a commit SHA, so the samples must produce the *same* SHA on every
machine. A commit SHA depends on the tree (file bytes, paths, modes), the author and committer identity and
dates, and the message. We therefore write the repo with git plumbing instead of ``git add``/``git commit``:

- blobs are hashed with ``--no-filters`` (no autocrlf or attributes from the user's set-up);
- file modes come from the content (``#!`` → 100755, else 100644), never from the file system;
- identity and dates are fixed per repo and passed through the environment;
- the user's and the system's git config are ignored
  (``GIT_CONFIG_GLOBAL=/dev/null``, ``GIT_CONFIG_NOSYSTEM=1``).

Usage::

    python -m samples.make_repos DEST     # creates DEST/<name>.git (bare) and prints name, branch, SHA
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

REPOS_DIR = Path(__file__).resolve().parent / "repos"

AUTHOR_NAME = "Flyte Llama Samples"
AUTHOR_EMAIL = "samples@flyte-llama.invalid"

# Left behind by editors, test runs or tools inside samples/repos/; never part of a sample.
_JUNK_DIRS = frozenset({"__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache", ".ipynb_checkpoints"})
_JUNK_FILES = frozenset({".DS_Store"})
_JUNK_SUFFIXES = (".pyc", ".pyo", ".swp")


@dataclass(frozen=True)
class SampleRepo:
    """One sample repo: it stands in for the real Flyte repo of the same name."""

    name: str
    branch: str  # the real repo's default branch: flyte uses main, the others master
    split: str  # "train" | "test", the same role as the real repo
    date: str  # ISO 8601, author and committer date of the single commit

    @property
    def git_date(self) -> str:
        """The date in git's raw ``<unix seconds> <offset>`` form, which no locale or parser can misread."""
        when = datetime.fromisoformat(self.date)
        offset = when.utcoffset()
        if offset is None:
            raise ValueError(f"sample {self.name}: date {self.date!r} needs an explicit UTC offset")
        minutes = int(offset.total_seconds()) // 60
        sign = "+" if minutes >= 0 else "-"
        return f"{int(when.timestamp())} {sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"


# Config order = the real corpus's order. The dates matter: the integrity stage keeps, among duplicate train
# files, the copy from the repo with the newest commit, so flyte (the monorepo) is the newest train repo,
# as in reality where the component repos were archived before the last v1 releases.
SAMPLES: tuple[SampleRepo, ...] = (
    SampleRepo("flyte", "main", "train", "2025-06-02T12:00:00+00:00"),
    SampleRepo("flytekit", "master", "train", "2025-03-10T09:30:00+00:00"),
    SampleRepo("flytepropeller", "master", "train", "2024-01-15T10:00:00+00:00"),
    SampleRepo("flyteplugins", "master", "train", "2024-01-15T11:00:00+00:00"),
    SampleRepo("flyteidl", "master", "train", "2024-01-16T08:00:00+00:00"),
    SampleRepo("flyteadmin", "master", "train", "2024-01-17T14:00:00+00:00"),
    SampleRepo("flyteconsole", "master", "train", "2024-09-20T16:45:00+00:00"),
    SampleRepo("flytesnacks", "master", "test", "2025-05-01T07:15:00+00:00"),
    SampleRepo("flyte-conference-talks", "master", "test", "2024-11-05T18:00:00+00:00"),
)


def sample_files(name: str) -> list[tuple[str, Path]]:
    """(path inside the repo, file on disk) for one sample, sorted by path; junk files skipped."""
    root = REPOS_DIR / name
    if not root.is_dir():
        raise FileNotFoundError(f"no sample tree for {name!r} at {root}")
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _JUNK_DIRS)
        for filename in filenames:
            if filename in _JUNK_FILES or filename.endswith(_JUNK_SUFFIXES):
                continue
            full = Path(dirpath) / filename
            files.append((full.relative_to(root).as_posix(), full))
    if not files:
        raise FileNotFoundError(f"sample tree {root} is empty")
    return sorted(files)


def file_mode(content: bytes) -> str:
    """Executable iff it is a script with a shebang: decided by content, so checkouts cannot change it."""
    return "100755" if content.startswith(b"#!") else "100644"


def _git_env(sample: SampleRepo) -> dict[str, str]:
    # Drop any GIT_* variables of the caller (e.g. GIT_DIR or GIT_INDEX_FILE set by a hook): they would
    # redirect our plumbing into another repo.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME=AUTHOR_NAME,
        GIT_AUTHOR_EMAIL=AUTHOR_EMAIL,
        GIT_AUTHOR_DATE=sample.git_date,
        GIT_COMMITTER_NAME=AUTHOR_NAME,
        GIT_COMMITTER_EMAIL=AUTHOR_EMAIL,
        GIT_COMMITTER_DATE=sample.git_date,
    )
    return env


def _git(git_dir: Path, env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    proc = subprocess.run(
        ["git", f"--git-dir={git_dir}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {git_dir}: {proc.stderr.strip()}")
    return proc.stdout.strip()


def make_sample_repo(sample: SampleRepo, git_dir: Path) -> str:
    """Create (or verify) the bare repo of one sample at ``git_dir``; return its commit SHA."""
    env = _git_env(sample)
    if git_dir.exists():
        if not (git_dir / "HEAD").is_file() or not (git_dir / "objects").is_dir():
            raise FileExistsError(
                f"{git_dir} exists and is not a bare git repo: remove it or pick another DEST"
            )
    else:
        git_dir.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "git",
                "init",
                "--bare",
                "--quiet",
                f"--initial-branch={sample.branch}",
                "--object-format=sha1",
                "--template=",
                str(git_dir),
            ],
            env=env,
            check=True,
            capture_output=True,
        )

    files = sample_files(sample.name)
    blob_shas = _git(
        git_dir,
        env,
        "hash-object",
        "-w",
        "--no-filters",
        "--stdin-paths",
        stdin="".join(f"{full}\n" for _, full in files),
    ).split("\n")
    index_info = "".join(
        f"{file_mode(full.read_bytes())} {sha}\t{path}\n"
        for (path, full), sha in zip(files, blob_shas, strict=True)
    )
    # A throw-away index: the bare repo has none, and the caller's index must never be touched.
    with tempfile.TemporaryDirectory() as tmp:
        env_index = {**env, "GIT_INDEX_FILE": str(Path(tmp) / "index")}
        _git(git_dir, env_index, "update-index", "--add", "--index-info", stdin=index_info)
        tree = _git(git_dir, env_index, "write-tree")
    commit = _git(git_dir, env, "commit-tree", tree, "-m", f"{sample.name}: Flyte Llama sample snapshot")

    ref = f"refs/heads/{sample.branch}"
    existing = subprocess.run(
        ["git", f"--git-dir={git_dir}", "rev-parse", "--verify", "--quiet", ref],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    ).stdout.strip()
    if existing and existing != commit:
        raise FileExistsError(
            f"{git_dir} already has {ref} at {existing}, not the sample commit {commit}: "
            "remove it or pick another DEST"
        )
    _git(git_dir, env, "update-ref", ref, commit)
    _git(git_dir, env, "symbolic-ref", "HEAD", ref)
    return commit


def make_sample_repos(dest: Path, names: list[str] | None = None) -> dict[str, Path]:
    """Create ``dest/<name>.git`` (bare, one commit on the sample's branch) for each sample.

    ``names`` picks a subset (default: all nine). Running it again on the same ``dest`` is a no-op
    that verifies the commits. The returned paths work as ``--mirrors DEST`` or ``--source NAME=PATH``.
    """
    by_name = {s.name: s for s in SAMPLES}
    unknown = sorted(set(names or ()) - by_name.keys())
    if unknown:
        raise KeyError(f"unknown sample repo(s) {unknown}; known: {sorted(by_name)}")
    dest = Path(dest)
    repos = {}
    for sample in SAMPLES:
        if names is None or sample.name in names:
            git_dir = dest / f"{sample.name}.git"
            make_sample_repo(sample, git_dir)
            repos[sample.name] = git_dir
    return repos


def samples_pins() -> dict[str, str]:
    """name → commit SHA of every sample, computed by building the repos in a temp dir."""
    with tempfile.TemporaryDirectory(prefix="flyte-llama-samples-") as tmp:
        return {s.name: make_sample_repo(s, Path(tmp) / f"{s.name}.git") for s in SAMPLES}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m samples.make_repos",
        description="Create the Flyte Llama sample repos as bare git repos DEST/<name>.git "
        "(one deterministic commit each) and print name, branch, split and commit SHA.",
    )
    parser.add_argument("dest", type=Path, help="folder to create the repos in (created if missing)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="create only these samples")
    args = parser.parse_args(argv)
    try:
        repos = make_sample_repos(args.dest, args.only)
    except (FileExistsError, FileNotFoundError, KeyError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    by_name = {s.name: s for s in SAMPLES}
    for name, git_dir in repos.items():
        sample = by_name[name]
        sha = subprocess.run(
            ["git", f"--git-dir={git_dir}", "rev-parse", f"refs/heads/{sample.branch}"],
            capture_output=True,
            text=True,
            env=_git_env(sample),
            check=True,
        ).stdout.strip()
        print(f"{name:<24} {sample.branch:<7} {sample.split:<6} {sha}  {git_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
