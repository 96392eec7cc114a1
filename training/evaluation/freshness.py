"""When was each line of a held-out task written? `git blame` at the pinned commit gives each line's author
date; a task is *fresh* when every line of its middle was authored after the base model's training cutoff,
so the base model cannot have seen it (no contamination through pretraining, whatever the repo's age).

The cutoff is a config value (`EvalConfig.fresh_cutoff`); its default is Code Llama's: the Code Llama paper
(Rozière et al. 2023, arXiv:2308.12950) and its model card say the models were trained between January and
July 2023, so code authored on or after 2023-08-01 cannot be in their training data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from pathlib import Path

from dataset_builder.gitread import GitError, git
from flyte_llama_common.ids import is_safe_name, is_sha

CODE_LLAMA_CUTOFF = "2023-08-01"
CUTOFF_SOURCE = "Code Llama paper (arXiv:2308.12950) and model card: trained between January and July 2023"


def blame_dates(git_dir: Path, commit: str, path: str, lines: Iterable[tuple[int, int]]) -> dict[int, str]:
    """{1-based line: ISO author date (UTC)} for the given inclusive line ranges of `path` at `commit`."""
    if not is_sha(commit):
        raise ValueError(f"blame needs a pinned 40-hex commit, not {commit!r}")
    ranges = sorted(set(lines))
    if not ranges:
        return {}
    args = ["blame", "--incremental"]
    for first, last in ranges:
        args += ["-L", f"{int(first)},{int(last)}"]
    out = git(git_dir, *args, commit, "--", path)
    times: dict[str, int] = {}
    dates: dict[int, str] = {}
    pending: tuple[str, int, int] | None = None
    for row in out.splitlines():
        head = row.split(" ")
        if len(head) == 4 and is_sha(head[0]) and all(x.isdigit() for x in head[1:]):
            pending = (head[0], int(head[2]), int(head[3]))
        elif row.startswith("author-time ") and pending is not None:
            times[pending[0]] = int(row.split(" ", 1)[1])
        elif row.startswith("filename ") and pending is not None:
            sha, start, count = pending
            day = dt.datetime.fromtimestamp(times[sha], tz=dt.timezone.utc).date().isoformat()
            dates.update({line: day for line in range(start, start + count)})
            pending = None
    return dates


def find_git_dir(root: Path, repo: str) -> Path | None:
    """`root/<repo>.git` (bare mirror) or `root/<repo>/.git` (clone), when one exists. A repo name from a
    tasks file that is not a plain name (`../x`, `/etc`) finds nothing: it never leaves `root`."""
    if not is_safe_name(repo):
        return None
    for candidate in (root / f"{repo}.git", root / repo / ".git", root / repo):
        if (candidate / "HEAD").is_file() and (candidate / "objects").is_dir():
            return candidate
    return None


def authored_ranges(
    tasks: Iterable, commits: Mapping[str, str], git_root: Path, undated: list[str] | None = None
) -> dict[str, tuple[str, str] | None]:
    """{task_id: (first, last) author date of its middle's lines}; None where `git_root` lacks the repo or
    `git blame` fails (the file is then appended to `undated`, with git's message)."""
    by_file: dict[tuple[str, str], list] = {}
    for task in tasks:
        by_file.setdefault((task.repo, task.path), []).append(task)
    out: dict[str, tuple[str, str] | None] = {}
    for (repo, path), group in sorted(by_file.items()):
        git_dir = find_git_dir(git_root, repo)
        if git_dir is None or repo not in commits:
            out.update({t.task_id: None for t in group})
            continue
        try:
            dates = blame_dates(git_dir, commits[repo], path, [tuple(t.lines) for t in group])
        except GitError as err:
            # A mirror without the file's whole history (a partial clone or snapshot missing old blobs)
            # cannot date its lines: those tasks are undated (None), never guessed, and the files listed.
            if undated is not None:
                undated.append(f"{repo}/{path}: {err}")
            out.update({t.task_id: None for t in group})
            continue
        for t in group:
            days = [dates[i] for i in range(t.lines[0], t.lines[1] + 1) if i in dates]
            out[t.task_id] = (min(days), max(days)) if days else None
    return out


def is_fresh(authored: tuple[str, str] | None, cutoff: str) -> bool | None:
    """Every middle line authored on or after `cutoff` (None when the dates are unknown)."""
    return None if authored is None else authored[0] >= cutoff
