"""Publish the dataset folder or the staged model folder to the Hugging Face Hub in one commit.

    python push.py dataset --folder DIR --repo-id ORG/NAME [--tag vX.Y.Z|auto] [--private]
        [--create-pr] [--dry-run]
    python push.py model   --folder DIR --repo-id ORG/NAME [--tag TAG|auto] [--private] [--dry-run]

The token comes from HF_TOKEN or a saved login (`huggingface-cli login`); --dry-run needs neither a token
nor a network. A model folder is a staged adapter (hub/flyte-llama-<name>) or a staged merged model
(hub/flyte-llama-<name>-merged, from `python -m model_card.stage ... --merged`): the merged model is its own
repo (`--repo-id ORG/NAME-merged`), because serving engines load a model from a repo root, not a subfolder;
both carry the same version.json, so `--tag auto` gives them the same tag.
Refused with one `error:` line and exit 2, --dry-run included: a repo id the Hub would reject, a symbolic
link or special file anywhere in the folder (links are never followed), a malformed adapter_config.json /
eval_results.json / manifest.json, an absolute path of this machine in the published metadata, and a folder
staged for another repo (its card would load that repo: stage it again with the right id).
A model is versioned on its own (`--tag auto`, model_card/identity.py), not with its corpus' version.
The logic lives in model_card.publish; this file only parses arguments.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model_card.publish import PushError, publish
from model_card.safety import UnsafeError, check_repo_id


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="kind", required=True)
    kinds = (("dataset", "a dataset folder"), ("model", "a staged adapter or merged model folder (hub/...)"))
    for kind, help_text in kinds:
        p = sub.add_parser(kind, help=f"publish {help_text}")
        p.add_argument("--folder", type=Path, required=True)
        p.add_argument("--repo-id", required=True, help="ORG/NAME on the Hub")
        p.add_argument(
            "--tag",
            help="version tag to create on the published commit, e.g. v1.0.0; `auto`: the version the "
            "folder was staged with (a dataset: v<manifest version>; a model: its version.json, "
            "v<corpus version>-<hash of recipe, corpus version and training code>)",
        )
        p.add_argument("--private", action="store_true", help="create the repo private (if it is new)")
        p.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing")
        p.add_argument("--dry-run", action="store_true", help="list operations and check the folder, offline")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:  # before anything else, so that --dry-run refuses an id the Hub would reject too
        check_repo_id(args.repo_id)
    except UnsafeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        result = publish(
            args.folder,
            args.repo_id,
            args.kind,
            tag=args.tag,
            private=args.private,
            create_pr=args.create_pr,
            dry_run=args.dry_run,
        )
    except PushError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 1 if result.problems else 0


if __name__ == "__main__":
    sys.exit(main())
