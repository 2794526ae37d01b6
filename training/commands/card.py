"""`wenlm card --model DIR`: re-render a model folder's README.md from its training_report.json and eval_results.json.

Use it e.g. after `wenlm evaluate` added eval_results.json. A README.md that wenlm generated is replaced; a
hand-written one (without wenlm's marker comment) is kept: the command refuses, or with --backup true moves it to
README.md.bak first.
"""

from __future__ import annotations

from pathlib import Path

from wenlm.training.args import CardArguments, parse_options, positional_model_to_flag
from wenlm.training.cards.card import write_model_card

ARGUMENTS = (CardArguments,)


def main(argv: list[str] | None = None) -> Path:
    (args,) = parse_options(ARGUMENTS, positional_model_to_flag(argv, "card"), command="card")
    folder = Path(args.model)
    if not folder.is_dir():
        raise FileNotFoundError(f"--model {folder}: the model folder does not exist (or is not a directory)")
    path = write_model_card(
        folder, repo_id=args.repo_id, keep_user_card="backup" if args.backup else "refuse"
    )
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
