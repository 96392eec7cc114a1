"""The corpus recipe: typed dataclasses loaded from YAML (dataset_builder/corpus.yaml) and validated.

Defaults live here, in one place; the YAML pins the sources and may override any threshold; the CLI
overrides single values with `--set section.key=value`. `config_sha256` hashes the resolved config, so
two builds with the same hash must give the same rows.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from flyte_llama_common.git import mask_credentials, ref_problem, url_credentials, url_problem
from flyte_llama_common.ids import is_safe_name, is_sha

DEFAULT_CONFIG = Path(__file__).with_name("corpus.yaml")
# Partial clones, the per-repo cache and prepared builds; $FLYTE_LLAMA_CACHE moves it (tests: a temp dir).
DEFAULT_CACHE = Path(os.environ.get("FLYTE_LLAMA_CACHE") or Path.home() / ".cache" / "flyte-llama")
SPLIT_ROLES = ("train", "test")
_SEMVER = re.compile(r"^\d+\.\d+\.\d+$")
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


class ConfigError(ValueError):
    """The corpus config is invalid; the message names the file, the key and the fix (credentials masked)."""

    def __init__(self, message: str) -> None:
        super().__init__(mask_credentials(message))


@dataclass(frozen=True)
class RepoSpec:
    """One pinned source repository."""

    name: str  # short name, also the `repo` column, e.g. "flytekit"
    url: str  # where the default (non-mirror) build clones it from
    ref: str  # branch or tag the pin was resolved from; `pin` resolves it again
    commit: str  # full 40-hex SHA the corpus is read at
    split: str  # "train" or "test": the whole repo goes to that side (no leak across splits)
    license: str  # SPDX id of the repo's license


@dataclass(frozen=True)
class FilterConfig:
    """Keep/drop thresholds. Every drop is counted by reason (see filters.py)."""

    max_file_bytes: int = 1_000_000  # larger files are mostly data or generated
    max_json_bytes: int = 100_000  # only small JSON (configs, schemas); big JSON is data
    max_line_chars: int = 1000  # minified or data-like
    max_mean_line_chars: float = 100.0
    min_alnum_fraction: float = 0.25  # share of letters/digits among all characters
    max_encoded_run_chars: int = 1000  # one base64/hex run longer than this → embedded data
    vendored_dirs: tuple[str, ...] = (
        "vendor",
        "node_modules",
        "third_party",
        "third-party",
        "dist",
        "build",
        ".yarn",
        "bower_components",
        "site-packages",
        "__pycache__",
    )
    lockfiles: tuple[str, ...] = (
        "go.sum",
        "package-lock.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "poetry.lock",
        "uv.lock",
        "pipfile.lock",
        "cargo.lock",
        "gemfile.lock",
        "composer.lock",
        "pdm.lock",
        "npm-shrinkwrap.json",
        "bun.lockb",
    )


@dataclass(frozen=True)
class SplitConfig:
    """Validation = a deterministic share of train-repo files, chosen by a salted hash of (repo, path)."""

    validation_fraction: float = 0.02
    salt: str = "flyte-llama"


@dataclass(frozen=True)
class ExportConfig:
    max_shard_bytes: int = 256 * 1024 * 1024  # content bytes per Parquet shard before starting a new one
    row_group_size: int = 500  # fixed, so the same rows give the same bytes


@dataclass(frozen=True)
class DedupConfig:
    """Exact + near dedup and decontamination (dedup.py). Issue 3 / BigCode settings by default."""

    num_perm: int = 256  # MinHash permutations (BigCode uses 256)
    threshold: float = 0.7  # Jaccard similarity of 5-gram sets above which two files are near duplicates
    ngram: int = 5  # shingle size in code tokens
    seed: int = 1  # seed of datasketch's permutations: same seed, same signatures, same clusters
    workers: int = 2  # threads for signature computation (numpy releases the GIL); never changes results

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ConfigError(f"dedup.threshold must be in (0, 1], got {self.threshold}")
        if self.num_perm < 16:
            raise ConfigError(f"dedup.num_perm must be at least 16, got {self.num_perm}")
        if not 1 <= self.ngram <= 8:
            raise ConfigError(f"dedup.ngram must be in 1..8, got {self.ngram}")
        if self.workers < 1:
            raise ConfigError(f"dedup.workers must be >= 1, got {self.workers}")
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"dedup.seed must be in 0..2**32-1 (numpy's seed range), got {self.seed}")


@dataclass(frozen=True)
class CorpusConfig:
    version: str  # semver of the corpus; the Hub tag is "v" + version
    repos: tuple[RepoSpec, ...]
    name: str = "flyte-llama-corpus"
    hub_repo_id: str = "unionai-oss/flyte-llama-corpus"  # where the card says to load it from
    filters: FilterConfig = field(default_factory=FilterConfig)
    splits: SplitConfig = field(default_factory=SplitConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)

    def repo(self, name: str) -> RepoSpec:
        for spec in self.repos:
            if spec.name == name:
                return spec
        raise ConfigError(
            f"no repo named {name!r} in the config; known: {', '.join(r.name for r in self.repos)}"
        )

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @property
    def config_sha256(self) -> str:
        """Stable hash of the resolved config (sorted keys, no whitespace)."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


def _convert(tp: Any, value: Any, where: str) -> Any:
    """Check/convert one YAML value to the declared field type; raise ConfigError naming `where`."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        item_tp = typing.get_args(tp)[0]
        return tuple(_convert(item_tp, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (typing.Union, types.UnionType):
        raise ConfigError(f"{where}: unions are not supported in the config")
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float, str, bool) and (type(value) is not tp):
        raise ConfigError(f"{where}: expected {tp.__name__}, got {type(value).__name__} {value!r}")
    return value


def from_dict(cls: type, data: Any, where: str = "config") -> Any:
    """Build dataclass `cls` from a mapping; unknown and missing keys are errors that list the valid ones."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(known)}")
    kwargs = {}
    for name, f in known.items():
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], f"{where}.{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}: missing required key {name!r}")
    try:
        return cls(**kwargs)
    except ConfigError as exc:  # a section's own checks (__post_init__): say which file
        raise ConfigError(f"{where}: {exc}") from None


def _check_name(value: str, key: str, example: str) -> None:
    if not is_safe_name(value):
        raise ConfigError(
            f"{key} {value!r} becomes a file/folder name: use letters, digits, '.', '_' or '-', starting "
            f"with a letter or digit, without '..' (e.g. {example})"
        )


def _check_repo(repo: RepoSpec, where: str) -> None:
    _check_name(repo.name, f"{where}: name", "flytekit")
    if not is_sha(repo.commit):
        raise ConfigError(
            f"{where}: commit {repo.commit!r} is not a full 40-hex lowercase SHA; "
            f"run `python -m dataset_builder pin --write` to resolve {repo.ref!r}"
        )
    if repo.split not in SPLIT_ROLES:
        raise ConfigError(f"{where}: split {repo.split!r} is not one of {SPLIT_ROLES}")
    if not repo.ref or not repo.url or not repo.license:
        raise ConfigError(f"{where}: url, ref and license must be non-empty")
    if problem := ref_problem(repo.ref):
        raise ConfigError(f"{where}: ref {repo.ref!r} {problem}; use a branch or tag name, e.g. v1.2.3")
    if problem := url_problem(repo.url):
        raise ConfigError(f"{where}: url {repo.url!r} {problem}")
    if url_credentials(repo.url):  # the url is published in manifest.json and the dataset card
        raise ConfigError(
            f"{where}: url {repo.url!r} carries credentials, and the url is published with the corpus; "
            f"remove them and use a git credential helper, or pass --source {repo.name}=URL for this build"
        )


def _positive(value: float, key: str, default: float) -> None:
    if not value > 0:  # not `<= 0`: NaN fails every comparison and must be refused too
        raise ConfigError(f"{key} must be > 0, got {value}; the default is {default}")


def validate(cfg: CorpusConfig) -> CorpusConfig:
    """Semantic checks on a typed config; returns it unchanged or raises ConfigError."""
    if not _SEMVER.match(cfg.version):
        raise ConfigError(f"version {cfg.version!r} is not semver MAJOR.MINOR.PATCH (e.g. 1.0.0)")
    _check_name(cfg.name, "name", "flyte-llama-corpus")
    if not _HUB_ID.match(cfg.hub_repo_id) or ".." in cfg.hub_repo_id:
        raise ConfigError(f"hub_repo_id {cfg.hub_repo_id!r} is not a Hub id NAMESPACE/NAME (e.g. org/corpus)")
    if not cfg.repos:
        raise ConfigError("repos: list at least one repository")
    seen: set[str] = set()
    for i, repo in enumerate(cfg.repos):
        where = f"repos[{i}] ({repo.name})"
        _check_repo(repo, where)
        if repo.name in seen:
            raise ConfigError(f"{where}: duplicate repo name {repo.name!r}; names must be unique")
        seen.add(repo.name)
    if not 0 <= cfg.splits.validation_fraction < 1:
        raise ConfigError(
            f"splits.validation_fraction must be in [0, 1), got {cfg.splits.validation_fraction}"
        )
    f, defaults = cfg.filters, FilterConfig()
    for key in ("max_file_bytes", "max_json_bytes", "max_line_chars", "max_encoded_run_chars"):
        _positive(getattr(f, key), f"filters.{key}", getattr(defaults, key))
    _positive(f.max_mean_line_chars, "filters.max_mean_line_chars", defaults.max_mean_line_chars)
    if not 0 <= f.min_alnum_fraction <= 1:
        raise ConfigError(f"filters.min_alnum_fraction must be in [0, 1], got {f.min_alnum_fraction}")
    export = ExportConfig()
    _positive(cfg.export.row_group_size, "export.row_group_size", export.row_group_size)
    _positive(cfg.export.max_shard_bytes, "export.max_shard_bytes", export.max_shard_bytes)
    return cfg


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply `section.key=value` overrides to the raw YAML mapping (values parsed as YAML scalars).

    `repos.<name>.<key>=value` addresses a repo by name, e.g. `repos.flytekit.commit=<sha>`.
    """
    data = json.loads(json.dumps(data))  # deep copy of plain YAML data
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. filters.max_file_bytes=500000")
        parts = key.split(".")
        node: Any = data
        if parts[0] == "repos" and len(parts) == 3:
            matches = [r for r in data.get("repos", []) if r.get("name") == parts[1]]
            if not matches:
                raise ConfigError(f"--set {key}: no repo named {parts[1]!r}")
            node, parts = matches[0], parts[2:]
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: {part!r} is not a section")
        node[parts[-1]] = yaml.safe_load(raw)  # 12 → int, true → bool, abc → str
    return data


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> CorpusConfig:
    """Load, override and validate the corpus config (default: the recipe shipped with the package)."""
    path = Path(path) if path else DEFAULT_CONFIG
    if not path.is_file():
        raise ConfigError(
            f"config file {path} not found; pass --config FILE or omit it to use {DEFAULT_CONFIG}"
        )
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    data = apply_overrides(data or {}, overrides or [])
    cfg = from_dict(CorpusConfig, data, where=str(path))
    try:
        return validate(cfg)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
