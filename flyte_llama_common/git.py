"""The one way this project runs git: a hardened argv, inputs checked before they reach it, errors masked.

Every git process goes through `git_command` (or `git` / `git_bytes`, which run it):
- `-c protocol.ext.allow=never` on every call, even where a user's or a mirror's config allows `ext::`
  (it runs arbitrary commands, and a read from a partial clone can fetch from its remote);
- user-supplied refs and URLs go after `--` (`targets=`), so git can never read one as an option; they are
  also checked first (`url_problem`, `ref_problem`), since `--` does not stop `ext::` URLs;
- `network=True` adds a non-interactive environment (a credential prompt would hang the build), a
  low-speed limit and a timeout;
- every message of a GitError passes through `mask_credentials`, so a `user:password@` is never printed.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from flyte_llama_common.ids import is_sha

# Options for every git process: `ext::` URLs run shell commands.
SAFE_OPTIONS = ("-c", "protocol.ext.allow=never")
# Give up on stalled transfers instead of hanging (network calls only).
NETWORK_OPTIONS = ("-c", "http.lowSpeedLimit=1000", "-c", "http.lowSpeedTime=15")
# Never ask for credentials: a prompt would hang the build.
NETWORK_ENV = {
    **os.environ,
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ASKPASS": "true",
    "GCM_INTERACTIVE": "never",
    "GIT_SSH_COMMAND": "ssh -o BatchMode=yes -o ConnectTimeout=10",
}
NETWORK_TIMEOUT_S = 30.0
# The userinfo of a URL (`scheme://user:password@`): up to the last "@" before the host's first "/".
_USERINFO = re.compile(r"(?<=://)[^/\s@]*(?:@[^/\s@]*)*@")


def mask_credentials(text: str) -> str:
    """`text` with the `user:password@` of every URL in it replaced by `***@` (tokens are often the user)."""
    return _USERINFO.sub("***@", text)


def one_line(stderr: str) -> str:
    """git's (multi-line) stderr as one line, for one-line error messages."""
    return "; ".join(line.strip() for line in stderr.splitlines() if line.strip()).rstrip(".")


class GitError(RuntimeError):
    """A git command failed; the message names the command and git's reason (credentials masked).

    `stderr` is git's stderr as one masked line and `timed_out` says whether it was stopped, so callers
    can word their own error (with the fix) without parsing the message.
    """

    def __init__(self, message: str, *, stderr: str = "", timed_out: bool = False) -> None:
        super().__init__(mask_credentials(message))
        self.stderr = mask_credentials(stderr)
        self.timed_out = timed_out


def git_command(
    git_dir: Path | str | None,
    *args: str,
    targets: Sequence[str] | None = None,
    options: Sequence[str] = (),
) -> list[str]:
    """The argv of a hardened git call: against `git_dir` when given, `options` (`-c key=value` pairs)
    before the subcommand in `args`, and `targets` (refs, URLs, keys) after `--`."""
    location = [f"--git-dir={git_dir}"] if git_dir is not None else []
    tail = ["--", *targets] if targets is not None else []
    return ["git", *SAFE_OPTIONS, *options, *location, *args, *tail]


def _run(
    git_dir: Path | str | None,
    args: tuple[str, ...],
    *,
    targets: Sequence[str] | None = None,
    options: Sequence[str] = (),
    network: bool = False,
    timeout: float | None = None,
    env: dict[str, str] | None = None,
    input: str | None = None,
    cwd: Path | None = None,
    text: bool = True,
) -> subprocess.CompletedProcess:
    if network:
        options = [*NETWORK_OPTIONS, *options]
        env = env if env is not None else NETWORK_ENV
        timeout = timeout if timeout is not None else NETWORK_TIMEOUT_S
    cmd = git_command(git_dir, *args, targets=targets, options=options)
    shown = " ".join(cmd)
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=text, input=input, timeout=timeout, env=env, cwd=cwd, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise GitError(f"`{shown}` timed out after {timeout:.0f}s", timed_out=True) from exc
    if proc.returncode != 0:
        stderr = one_line(proc.stderr if text else proc.stderr.decode(errors="replace"))
        raise GitError(f"`{shown}` failed: {stderr}", stderr=stderr)
    return proc


def git(
    git_dir: Path | str | None,
    *args: str,
    targets: Sequence[str] | None = None,
    options: Sequence[str] = (),
    network: bool = False,
    timeout: float | None = None,
    env: dict[str, str] | None = None,
    input: str | None = None,
    cwd: Path | None = None,
) -> str:
    """Run a hardened git command (see git_command) and return its stdout; GitError on failure or timeout."""
    return _run(
        git_dir,
        args,
        targets=targets,
        options=options,
        network=network,
        timeout=timeout,
        env=env,
        input=input,
        cwd=cwd,
        text=True,
    ).stdout


def git_bytes(git_dir: Path | str | None, *args: str, targets: Sequence[str] | None = None) -> bytes:
    """`git`, for output that is not text (`-z` listings of paths in any encoding)."""
    return _run(git_dir, args, targets=targets, text=False).stdout


URL_SCHEMES = ("https", "http", "ssh", "git", "file")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_SCP = re.compile(r"^[A-Za-z0-9._~+-]+@[A-Za-z0-9][A-Za-z0-9.-]*:(?!:)")  # user@host:path (scp-like)
URL_FORMS = "https://, http://, ssh://, git://, file:// or user@host:path"


def is_url(value: str) -> bool:
    """A remote URL (any `scheme://` or scp-like `user@host:path`) rather than a local path."""
    return bool(_SCHEME.match(value) or _SCP.match(value))


def url_problem(value: str) -> str | None:
    """Why git must not be given `value` as a repository URL, or None when it is safe to pass (after `--`).

    Accepted: the schemes of URL_SCHEMES, scp-like `user@host:path`, or an existing local path. Refused:
    anything git could read as an option, `transport::address` forms (`ext::` runs a command), and a
    host starting with '-' (ssh would read it as an option).
    """
    if not value:
        return "is empty"
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return "contains control characters"
    if value.startswith("-"):
        return "starts with '-', which git would read as an option"
    if m := _SCHEME.match(value):
        scheme = m.group(1).lower()
        if scheme not in URL_SCHEMES:
            return f"uses the scheme {scheme}://; only {URL_FORMS} are allowed"
        try:
            host = urlsplit(value).hostname or ""
        except ValueError as exc:
            return f"is not a valid URL ({exc})"
        return "has a host starting with '-'" if host.startswith("-") else None
    if _SCP.match(value):
        return None
    if "::" in value:
        return f"uses git's transport::address syntax (e.g. ext::, which runs a command); use {URL_FORMS}"
    if not Path(value).expanduser().exists():
        return f"is neither a URL ({URL_FORMS}) nor an existing local path"
    return None


def url_credentials(value: str) -> bool:
    """Whether the URL carries a secret: a password, or any user name over http(s) (tokens go there)."""
    if not _SCHEME.match(value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    web = parts.scheme.lower() in ("http", "https")
    return parts.password is not None or (web and parts.username is not None)


def ref_problem(ref: str) -> str | None:
    """Why `ref` is not a branch/tag name (`git check-ref-format` rules) or a full SHA, or None."""
    if not ref:
        return "is empty"
    if is_sha(ref):
        return None
    if any(ord(c) < 32 or ord(c) == 127 for c in ref):
        return "contains control characters"
    if ref.startswith(("-", "+")):
        return f"starts with {ref[0]!r}, which git would read as an option or a forced refspec"
    try:  # git's own rules (no spaces, ~^:?*[\, '..', '@{', '.lock' ...); the ref cannot be an option here
        git(None, "check-ref-format", "--allow-onelevel", ref)
    except OSError as exc:
        return f"cannot be checked: git is not available ({exc})"
    except GitError:
        return "is not a valid branch or tag name (see `git check-ref-format`)"
    return None
