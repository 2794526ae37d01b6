"""`wenlm audit --model DIR [--canary_file FILE] [--train_files ...] --output_dir OUT`: the exposure of inserted
canaries and the extraction of training text (see docs/audit.md)."""

from __future__ import annotations

from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer

from wenlm.training.args import DataArguments, ModelSourceArguments, parse_options
from wenlm.training.args.inspection import AuditArguments
from wenlm.training.cards.card import record_report_section
from wenlm.training.inspection.audit import (
    OUTPUT_FILES,
    audit_markdown,
    report_section,
    run_audit,
    write_audit,
)
from wenlm.training.inspection.canaries import read_canary_file
from wenlm.training.model_folder import check_model_folder

ARGUMENTS = (ModelSourceArguments, AuditArguments, DataArguments)
# train_files unset means no extraction test (pretrain's default, the built-in corpus, would be a guess).
DEFAULTS = {"train_files": None}


def main(argv: list[str] | None = None) -> dict:
    source, options, data_args = parse_options(ARGUMENTS, argv, defaults=DEFAULTS, command="audit")
    if options.canary_file and not Path(options.canary_file).is_file():
        read_canary_file(options.canary_file)  # names the missing file before the model loads
    local = check_model_folder(source.model) is not None
    tokenizer = AutoTokenizer.from_pretrained(source.model, revision=source.revision, trust_remote_code=True)
    model = AutoModelForCausalLM.from_pretrained(
        source.model, revision=source.revision, trust_remote_code=True
    )
    result = run_audit(model.eval(), tokenizer, options, data_args if data_args.train_files else None)
    result["model"] = source.model
    write_audit(result, options.output_dir)
    print(audit_markdown(result))
    print(
        f"wrote {', '.join(name for name in OUTPUT_FILES if (Path(options.output_dir) / name).exists())} to "
        f"{options.output_dir}"
    )
    if options.update_model_folder and local:
        print(record_report_section(source.model, "audit", report_section(result)))
    return result
