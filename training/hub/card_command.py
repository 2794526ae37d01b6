"""`wenlm card DIR`: re-render a model folder's README.md from its training_report.json and eval_results.json.

A README.md that wenlm generated is replaced; a hand-written one (without wenlm's marker comment) is kept: the
command refuses, or with --backup moves it to README.md.bak first.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from wenlm.training.hub.card import write_model_card


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wenlm card",
        description="Re-render the model card (README.md) of a model folder from its reports, e.g. after "
        "`wenlm evaluate` added eval_results.json.",
    )
    parser.add_argument("folder", type=Path, help="model folder holding training_report.json")
    parser.add_argument("--repo-id", "--repo_id", dest="repo_id", default=None,
                        help="Hub id NAME/MODEL the card's usage code loads from (default: the folder path)")
    parser.add_argument("--backup", action="store_true",
                        help="replace a hand-written README.md after moving it to README.md.bak")
    return parser


def main(argv: list[str] | None = None) -> Path:
    args = build_parser().parse_args(argv)
    if not args.folder.is_dir():
        raise FileNotFoundError(f"model folder {args.folder} does not exist (or is not a directory)")
    path = write_model_card(args.folder, repo_id=args.repo_id, keep_user_card="backup" if args.backup else "refuse")
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
