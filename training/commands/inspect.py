"""`wenlm inspect --model DIR --text "..." --output_dir OUT`: one forward pass, written out as pictures and
tables (see docs/inspect.md)."""

from __future__ import annotations

from transformers import AutoModelForCausalLM, AutoTokenizer

from wenlm.training.args import InspectArguments, ModelSourceArguments, parse_options
from wenlm.training.inspection.text_view import OUTPUT_FILES, inspect

ARGUMENTS = (ModelSourceArguments, InspectArguments)


def main(argv: list[str] | None = None) -> None:
    source, options = parse_options(ARGUMENTS, argv, command="inspect")
    tokenizer = AutoTokenizer.from_pretrained(source.model, revision=source.revision, trust_remote_code=True)
    model = AutoModelForCausalLM.from_pretrained(
        source.model, revision=source.revision, trust_remote_code=True
    )
    result = inspect(
        model,
        tokenizer,
        options.text,
        options.output_dir,
        options.max_length,
        options.top_k,
        model_name=source.model,
    )
    scored = [record["surprisal_bits"] for record in result["tokens"][1:]]
    print(
        f"{len(scored)} tokens, mean surprisal {sum(scored) / len(scored):.3f} bits; logit lens by layer: "
        + ", ".join(f"{record['mean_bits']:.2f}" for record in result["logit_lens"])
    )
    print(f"wrote {', '.join(OUTPUT_FILES)} to {options.output_dir}")
