"""The privacy audit behind `wenlm audit`: how much of its training data a model gives away. Canaries (exposure.py) measure memorisation of inserted secrets by how often they were
seen; extraction (extraction.py) measures verbatim reproduction of real training documents by their copies.

Writes audit.json, audit.md and exposure.png to --output_dir; `report_section` is what the command puts into the
model folder's training_report.json with --update_model_folder true (the card renders it). None of them holds a
secret or training text: only counts, ranks and exposures.
"""

from __future__ import annotations

import datetime
import math
from pathlib import Path

from matplotlib.figure import Figure

from wenlm.training.args import DataArguments
from wenlm.training.args.inspection import AuditArguments
from wenlm.training.inspection.canaries import Canary, read_canary_file
from wenlm.training.inspection.exposure import canary_exposure, greedy_reproduces
from wenlm.training.inspection.extraction import measure_extraction
from wenlm.training.utils import markdown_table, write_atomically, write_json

OUTPUT_FILES = ("audit.json", "audit.md", "exposure.png")


def audit_canaries(
    model,
    tokenizer,
    canaries: list[Canary],
    exact_limit: int = 20000,
    candidates: int = 2000,
    seed: int = 0,
    batch_size: int = 64,
) -> dict:
    """Exposure and greedy reproduction of every canary, and their summary by repetition count."""
    records = []
    for canary in canaries:
        result = canary_exposure(model, tokenizer, canary, exact_limit, candidates, seed, batch_size)
        records.append(
            {
                "id": canary.id,
                "language": canary.language,
                "repeats": canary.repeats,
                "in_training": canary.in_training,
                "greedy_reproduced": greedy_reproduces(model, tokenizer, canary),
                **{key: value for key, value in result.items() if key != "skewnorm"},
            }
        )
    methods = sorted({record["method"] for record in records})
    return {
        "method": " and ".join(methods),
        "max_exposure": max(math.log2(c.candidate_space) for c in canaries),
        "canary_format": canaries[0].format,
        "by_repeats": summary_by_repeats(records),
        "canaries": records,
    }


def summary_by_repeats(records: list[dict]) -> list[dict]:
    rows = []
    for repeats in sorted({record["repeats"] for record in records}):
        group = [record for record in records if record["repeats"] == repeats]
        exposures = [record["exposure"] for record in group]
        counted = [record["in_training"] for record in group if record["in_training"] is not None]
        rows.append(
            {
                "repeats": repeats,
                "canaries": len(group),
                "mean_exposure": sum(exposures) / len(group),
                "min_exposure": min(exposures),
                "max_exposure": max(exposures),
                "mean_in_training": sum(counted) / len(counted) if counted else None,
                "greedy_reproduced": sum(record["greedy_reproduced"] for record in group),
            }
        )
    return rows


def audit_markdown(result: dict) -> str:
    parts = ["# Privacy audit\n"]
    canaries = result.get("canaries")
    if canaries:
        parts.append(
            '## Canary exposure\n\nExposure (Carlini et al., "The Secret Sharer", 2019) = log2 |candidate space| − '
            f"log2 rank of the true secret by the model's log-likelihood ({canaries['method']}); "
            f"{canaries['max_exposure']:.2f} bits means ranked first, about 1 bit means no better than chance. "
            "Copies in training count the training documents holding the canary after cleaning and the validation "
            "hold-out (unknown for files written before that count).\n"
        )
        header = [
            "copies inserted",
            "canaries",
            "mean copies in training",
            "mean exposure (bits)",
            "min",
            "max",
            "greedy decoding wrote the secret",
        ]
        rows = [
            [
                row["repeats"],
                row["canaries"],
                row["mean_in_training"],
                row["mean_exposure"],
                row["min_exposure"],
                row["max_exposure"],
                f"{row['greedy_reproduced']} of {row['canaries']}",
            ]
            for row in canaries["by_repeats"]
        ]
        parts.append(markdown_table(header, rows, digits=3) + "\n\n![exposure by copies](exposure.png)\n")
    extraction = result.get("extraction")
    if extraction:
        parts.append(
            f"## Training-data extraction\n\n{extraction['method'].capitalize()}. Copies are exact "
            "duplicates in the training files"
            + (" (de-duplication kept one for training)" if extraction["dedup"] else "")
            + ".\n"
        )
        rows = [
            [
                row["copies"],
                row["documents"],
                row["extracted"],
                row["extraction_rate"],
                row["mean_matched_tokens"],
            ]
            for row in extraction["by_copies"]
        ]
        parts.append(
            markdown_table(
                [
                    "copies in the files",
                    "documents",
                    "extracted",
                    "extraction rate",
                    "mean suffix tokens reproduced",
                ],
                rows,
                digits=3,
            )
            + "\n"
        )
        if extraction["documents_too_short"]:
            parts.append(
                f"{extraction['documents_too_short']} sampled documents were shorter than prefix + suffix "
                "and were skipped.\n"
            )
    return "\n".join(parts)


def plot_exposure(canaries: dict) -> Figure:
    """Each canary's exposure against its copies (controls at 0), the group means joined, and the maximum."""
    figure = Figure(figsize=(6.4, 4.2), layout="constrained")
    axes = figure.subplots()
    records = canaries["canaries"]
    axes.scatter([r["repeats"] for r in records], [r["exposure"] for r in records], alpha=0.6, label="canary")
    rows = canaries["by_repeats"]
    axes.plot(
        [r["repeats"] for r in rows],
        [r["mean_exposure"] for r in rows],
        marker="o",
        color="black",
        label="mean",
    )
    axes.axhline(canaries["max_exposure"], linestyle="--", color="grey", label="maximum (ranked first)")
    axes.set_xscale("symlog", linthresh=1)
    axes.set_xlabel("copies inserted into the training data (0: never inserted)")
    axes.set_ylabel("exposure (bits)")
    axes.set_title("Canary exposure by repetition")
    axes.legend()
    return figure


def run_audit(model, tokenizer, options: AuditArguments, data_args: DataArguments | None) -> dict:
    """The audit's results (what audit.json holds); canaries when options.canary_file, extraction when
    data_args."""
    if not options.canary_file and data_args is None:
        raise ValueError(
            "nothing to audit: give --canary_file (from `wenlm pretrain --canaries N`), --train_files "
            "(the model's training data), or both"
        )
    result: dict = {"date": datetime.date.today().isoformat()}
    if options.canary_file:
        canaries = read_canary_file(options.canary_file)
        result["canaries"] = audit_canaries(
            model,
            tokenizer,
            canaries,
            options.exact_limit,
            options.candidates,
            options.seed,
            options.per_device_eval_batch_size,
        )
    if data_args is not None:
        result["extraction"] = measure_extraction(
            model,
            tokenizer,
            data_args,
            options.prefix_tokens,
            options.suffix_tokens,
            options.samples,
            options.seed,
            options.per_device_eval_batch_size,
        )
    return result


def write_audit(result: dict, output_dir: str | Path) -> None:
    output_dir = Path(output_dir)
    write_json(output_dir / "audit.json", result)
    write_atomically(output_dir / "audit.md", audit_markdown(result))
    if result.get("canaries"):
        plot_exposure(result["canaries"]).savefig(output_dir / "exposure.png", dpi=120)


def report_section(result: dict) -> dict:
    """The audit as the model folder's report keeps it: the date and the aggregates, without per-canary rows."""
    section = {key: value for key, value in result.items() if key in ("date", "canaries", "extraction")}
    if "canaries" in section:
        section["canaries"] = {key: value for key, value in section["canaries"].items() if key != "canaries"}
    return section
