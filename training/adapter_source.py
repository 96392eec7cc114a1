"""Where `--adapter` comes from: a local RUN/adapter (or staged) folder, or a Hub model repo at a revision.

    python -m training evaluate --adapter my-org/flyte-llama-7b-lora --adapter-revision v1.0.0-3f2a9c1d ...
    python -m training complete --adapter my-org/flyte-llama-7b-lora --prompt ...

A Hub adapter is fetched with huggingface_hub's `snapshot_download` (only the files an adapter needs; the HF
cache is reused, and with HF_HUB_OFFLINE=1 a cached snapshot is found without the network). A local folder
wins over a Hub id of the same spelling, as everywhere in the project (flyte_llama_common.ids).
Every failure is one line that says what to pass instead.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flyte_llama_common.ids import hub_id_problem, is_sha

# What a PEFT adapter repo needs to load: the adapter, its config and the tokenizer it was trained with.
ADAPTER_PATTERNS = [
    "adapter_config.json",
    "*.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
]


def _snapshot_download(repo_id: str, revision: str | None) -> str:
    from huggingface_hub import snapshot_download

    return snapshot_download(repo_id, revision=revision, allow_patterns=ADAPTER_PATTERNS)


def _hub_error(adapter: str, revision: str | None, err: Exception) -> str:
    """One line for a failed download, by what went wrong."""
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    at = f" at revision {revision!r}" if revision else ""
    if isinstance(err, RevisionNotFoundError):
        return f"--adapter {adapter} has no revision {revision!r} on the Hub: pass an existing tag or commit"
    if isinstance(err, GatedRepoError):
        return f"--adapter {adapter} is gated: accept its terms on the Hub and log in (`hf auth login`)"
    if isinstance(err, RepositoryNotFoundError):
        return (
            f"--adapter {adapter}: no such folder here, and no such model repo on the Hub (or it is private: "
            "log in with `hf auth login`): pass a RUN/adapter folder or an existing ORG/NAME"
        )
    if isinstance(err, OfflineModeIsEnabled | LocalEntryNotFoundError):
        return (
            f"--adapter {adapter}{at} is not in the local Hugging Face cache and the Hub cannot be reached "
            "(HF_HUB_OFFLINE=1 or no network): download it once online, or pass a local RUN/adapter folder"
        )
    return f"--adapter {adapter}{at}: the download failed ({type(err).__name__}: {err})"


def resolve_adapter(
    adapter: str,
    revision: str | None = None,
    download: Callable[[str, str | None], str] = _snapshot_download,
) -> tuple[Path, str | None]:
    """(local folder holding adapter_config.json, the Hub commit it came from or None for a local folder).

    `download(repo_id, revision) -> folder` is huggingface_hub's snapshot_download by default (tests pass
    their own). Raises FileNotFoundError / ValueError with one line saying what to pass instead."""
    local = Path(adapter).expanduser()
    if local.exists():
        if revision is not None:
            raise ValueError(
                f"--adapter-revision {revision!r} is for a Hub id, but --adapter {adapter} is a local "
                "folder: drop --adapter-revision (or pass the Hub id ORG/NAME)"
            )
        if not (local / "adapter_config.json").is_file():
            raise FileNotFoundError(
                f"{adapter}/adapter_config.json not found: --adapter must be a RUN/adapter folder, a staged "
                "Hub folder or a Hub id ORG/NAME"
            )
        return local, None
    if hub_id_problem(adapter) is not None:  # not ORG/NAME: it can only have meant a folder
        raise FileNotFoundError(
            f"--adapter {adapter}: no such folder, and not a Hub id ORG/NAME: pass a RUN/adapter folder or "
            "the Hub id of an adapter repo"
        )
    try:
        folder = Path(download(adapter, revision))
    except Exception as err:  # huggingface_hub raises its own classes and httpx's: all become one line
        raise ValueError(_hub_error(adapter, revision, err)) from None
    if not (folder / "adapter_config.json").is_file():
        raise ValueError(
            f"--adapter {adapter}{f' at {revision!r}' if revision else ''} has no adapter_config.json: "
            "it is not a PEFT adapter repo (a merged model is a base: pass it as --base)"
        )
    # snapshot_download returns HF_HUB_CACHE/models--org--name/snapshots/<commit>: the pinned revision.
    return folder, folder.name if is_sha(folder.name) else revision
