"""CLI: `python -m dataset_builder build|pin|add-infilling`. Thin: parsing and printing; logic in modules."""

from __future__ import annotations

import argparse
import gc
import signal
import sys
import threading
import time
from pathlib import Path

from .config import DEFAULT_CACHE

DESCRIPTION = """\
Build the Flyte Llama corpus: the pinned Flyte repos of the recipe (dataset_builder/corpus.yaml) →
filtered, repo-split records → a folder that is exactly the Hub dataset repo (data/*.parquet,
README.md dataset card, manifest.json). Files are read from git objects at the pinned commits."""

EPILOG = """\
examples:
  python -m dataset_builder build --mirrors MIRRORS --out out/corpus
  python -m dataset_builder build --source flytekit=../flytekit --out out/corpus
  python -m dataset_builder build --set filters.max_file_bytes=500000 --out out/corpus
  python -m dataset_builder pin --mirrors MIRRORS                 # show what the refs point to now
  python -m dataset_builder pin --write                            # write new SHAs into the recipe
  python -m dataset_builder add-infilling --folder out/corpus --eval-results RUN/eval/eval_results.json
                                          # publish evaluate's infilling tasks as the `infilling` config"""


def _sources_arg(values: list[str]) -> dict[str, str]:
    out = {}
    for item in values:
        name, sep, location = item.partition("=")
        if not sep or not name or not location:
            raise SystemExit(
                f"error: --source {item!r}: expected NAME=PATH_OR_URL, e.g. flytekit=../flytekit"
            )
        out[name] = location
    return out


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="recipe YAML (default: dataset_builder/corpus.yaml)")
    p.add_argument(
        "--mirrors",
        type=Path,
        help="read repos from local git dirs DIR/<name> or DIR/<name>.git (bare or not)",
    )
    p.add_argument(
        "--source", action="append", default=[], metavar="NAME=PATH_OR_URL", help="override one repo's source"
    )
    p.add_argument(
        "--set",
        action="extend",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. filters.max_file_bytes=500000 or repos.flytekit.commit=<sha>",
    )


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m dataset_builder",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = ap.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build the dataset folder", description=DESCRIPTION)
    _add_common(build)
    build.add_argument(
        "--out", type=Path, default=Path("out/corpus"), help="output folder (default: out/corpus)"
    )
    build.add_argument(
        "--cache-dir",
        type=Path,
        default=DEFAULT_CACHE,
        help=f"partial clones (repos/) and prepared builds (datasets/) (default: {DEFAULT_CACHE})",
    )
    build.add_argument("--no-progress", action="store_true", help="no progress bars")
    pin = sub.add_parser("pin", help="resolve each repo's ref again; --write puts the SHAs into the recipe")
    _add_common(pin)
    pin.add_argument("--write", action="store_true", help="write the new SHAs into the config file")
    add = sub.add_parser(
        "add-infilling",
        help="add the infilling tasks of an evaluation as the dataset's `infilling` config",
        description=(
            "Add the infilling benchmark that `python -m training evaluate` cut from this folder's "
            "test split as the `infilling` config (infilling/test-*.parquet, card section, manifest). "
            "Tasks are checked against the test split; adding again replaces them."
        ),
    )
    add.add_argument("--folder", type=Path, required=True, help="the dataset folder the tasks were cut from")
    add.add_argument(
        "--out",
        type=Path,
        help="write the folder with the benchmark here; --folder stays as it is (default: replace --folder)",
    )
    add.add_argument(
        "--eval-results",
        type=Path,
        required=True,
        help="eval_results.json of that evaluation; the tasks file it names is read from beside it",
    )
    return ap


def cmd_add_infilling(args: argparse.Namespace) -> int:
    from model_card.dataset_card import render_dataset_card

    from .infilling_config import InfillingConfigError, add_from_eval_results

    out = args.out or args.folder
    manifest = add_from_eval_results(args.folder, args.eval_results, render_card=render_dataset_card, out=out)
    if manifest is None:
        raise InfillingConfigError(
            f"{args.eval_results} has no infilling results: run evaluate with --infill-tasks N (N > 0)"
        )
    info = manifest["infilling"]
    print(
        f"added {info['tasks']} infilling tasks from {info['files']} files of {args.folder} into {out}: "
        f"{info['by_language_kind']}"
    )
    return 0


class _Terminated(BaseException):
    """SIGTERM as an exception in the main thread, so every `finally` runs (pool shutdown, temp folders)."""


def _on_sigterm(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the cleanup short
    raise _Terminated


def _render_dataset_card(*args: object, **kwargs: object) -> object:
    # model_card.dataset_card imports `datasets`: imported when the card is written, so that a build's
    # workers start reading repos first (dataset_builder.build imports `datasets` while they run).
    from model_card.dataset_card import render_dataset_card

    return render_dataset_card(*args, **kwargs)


def cmd_build(args: argparse.Namespace) -> int:
    import logging

    from .build import build_corpus
    from .summary import print_summary

    # Notes such as "removed <stale temp folder>" (atomic.remove_stale) go to stderr as plain lines.
    notes = logging.StreamHandler(sys.stderr)
    for name in ("dataset_builder", "flyte_llama_common"):
        logging.getLogger(name).addHandler(notes)
    start = time.perf_counter()
    main_thread = threading.current_thread() is threading.main_thread()  # signal.signal needs it
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if main_thread else None
    try:
        manifest = build_corpus(
            args.out,
            args.config,
            overrides=args.set,
            mirrors=args.mirrors,
            sources=_sources_arg(args.source),
            cache_dir=args.cache_dir,
            progress=not args.no_progress,
            render_card=_render_dataset_card,
        )
    except (KeyboardInterrupt, _Terminated) as exc:
        name, code = ("SIGINT", 130) if isinstance(exc, KeyboardInterrupt) else ("SIGTERM", 143)
        print(
            f"error: build stopped by {name}; its workers and temporary folders were removed and no "
            f"half-written output was left: run the same command again to build {args.out}",
            file=sys.stderr,
        )
        return code
    finally:
        for name in ("dataset_builder", "flyte_llama_common"):
            logging.getLogger(name).removeHandler(notes)
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    print_summary(manifest)
    sha = manifest["config_sha256"]  # the manifest already holds it: no second config load
    print(f"wrote {args.out} (config_sha256 {sha[:12]}) in {time.perf_counter() - start:.1f}s")
    return 0


def cmd_pin(args: argparse.Namespace) -> int:
    from .config import DEFAULT_CONFIG, load_config
    from .pin import resolve_pins, write_pins

    cfg = load_config(args.config, args.set)
    pins = resolve_pins(cfg, args.mirrors, _sources_arg(args.source))
    for repo in cfg.repos:
        new = pins[repo.name]
        state = "unchanged" if new == repo.commit else f"was {repo.commit[:12]}"
        print(f"{repo.name:<24} {repo.ref:<12} {new}  {state}")
    changed = sum(pins[r.name] != r.commit for r in cfg.repos)
    if args.write:
        path = args.config or DEFAULT_CONFIG
        write_pins(path, pins)
        print(f"wrote {changed} new pin(s) to {path}; bump `version` before publishing a new corpus")
    elif changed:
        print(f"{changed} pin(s) would change; run again with --write to update the config")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)  # before the imports below: `--help` must not wait for `datasets`
    from .config import ConfigError
    from .gitread import GitError
    from .sources import SourceError

    errors: tuple[type[Exception], ...] = (ConfigError, SourceError, GitError)
    if args.command == "add-infilling":  # its module imports `datasets`: a build must not wait for it here
        from .infilling_config import InfillingConfigError

        errors += (InfillingConfigError,)
    commands = {"build": cmd_build, "pin": cmd_pin, "add-infilling": cmd_add_infilling}
    try:
        return commands[args.command](args)
    except errors as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    code = main()
    # Everything is written and flushed by now. Without this, the interpreter's shutdown collections walk
    # every object that pyarrow, pandas and `datasets` made, again and again while modules are torn down:
    # ~0.25 s of each cold build's process (measured), after the work is done. Frozen objects are skipped;
    # atexit handlers still run, and the OS frees the memory.
    gc.freeze()
    sys.exit(code)
