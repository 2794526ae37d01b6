"""Which cells a study trains, in what order, and how long they will take: the main grid, the repetition
sub-study, the time estimate that `--budget_minutes` trims the plan with, and the ETA printed after each cell.

Time is estimated from tokens to process and a throughput per model: measured once per model with a few
timed optimizer steps before anything trains, then replaced by the rate of the cells that model has finished.
A converged cell's passes are not known in advance; the estimate assumes the mean passes of the finished
cells of the same model (the maximum before any has finished), which errs on the long side.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from transformers import DataCollatorForLanguageModeling, set_seed

from wenlm.modeling import WenLMForCausalLM
from wenlm.training.args import ScalingArguments
from wenlm.training.scaling.fit.study_fit import REPETITION_SUBSTUDY
from wenlm.training.scaling.run.cells import REFERENCE_WIDTH, build_model_config, cell_plan
from wenlm.training.scaling.run.grid import ModelSpec
from wenlm.training.scaling.run.study_data import StudyData, blocks_for

__all__ = [
    "PlannedCell",
    "assign_to_workers",
    "estimate_seconds",
    "measure_throughput",
    "plan_cells",
    "trim_to_budget",
]


@dataclass
class PlannedCell:
    spec: ModelSpec
    data_size: int
    epochs: int | None = None  # fixed passes: the repetition sub-study; None: the study's regime decides
    substudy: str | None = None
    rule_tokens: int | None = None  # the size the batch rule is applied to (see cells.cell_plan)

    @property
    def label(self) -> str:
        passes = f" x{self.epochs} passes" if self.epochs is not None else ""
        return f"{self.spec.label} D={self.data_size:,}{passes}"

    @property
    def file_name(self) -> str:
        suffix = f"_x{self.epochs}" if self.epochs is not None else ""
        return f"{self.spec.slug}_{self.data_size}{suffix}.json"


def repetition_spec(specs: list[ModelSpec], options: ScalingArguments) -> ModelSpec:
    if options.repetition_model is None:
        return specs[0]
    for spec in specs:
        if options.repetition_model in (spec.label, spec.slug):
            return spec
    raise ValueError(
        f"--repetition_model {options.repetition_model!r} is not one of --presets ({', '.join(s.label for s in specs)})"
    )


def plan_cells(specs: list[ModelSpec], options: ScalingArguments) -> list[PlannedCell]:
    """The main grid, smallest model and D first, then the repetition sub-study's cells.

    The sub-study pairs each repeated cell (U unique tokens seen R times) with a single-pass cell of R x U
    unique tokens: the same compute, all of it new data, which is the comparison Muennighoff et al. fit.
    """
    cells = [PlannedCell(spec, size) for spec in specs for size in options.grid_data_sizes]
    epochs = options.repetition_epochs
    if epochs:
        spec = repetition_spec(specs, options)
        unique = options.repetition_tokens or min(options.grid_data_sizes)
        for passes in epochs:
            cells.append(PlannedCell(spec, unique * passes, 1, REPETITION_SUBSTUDY, unique))
            if passes > 1:
                cells.append(PlannedCell(spec, unique, passes, REPETITION_SUBSTUDY, unique))
    return cells


def measure_throughput(spec: ModelSpec, data: StudyData, options: ScalingArguments, steps: int = 4) -> float:
    """Training tokens per second of `spec` at the study's batch, from a few timed steps after one warm-up."""
    config = build_model_config(spec, options, data.tokenizer)
    set_seed(options.seed)
    model = WenLMForCausalLM._from_config(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    collate = DataCollatorForLanguageModeling(data.tokenizer, mlm=False)
    batch_size = min(options.per_device_train_batch_size, len(data.train))
    batch = collate([data.train[index] for index in range(batch_size)])
    timings = []
    for _ in range(steps + 1):
        started = time.perf_counter()
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        timings.append(time.perf_counter() - started)
    # The first step pays for allocation and kernel selection; the fastest of the rest is least disturbed by
    # other jobs on the machine, which come and go while a long study runs.
    return batch_size * options.data.block_size / min(timings[1:])


def _expected_passes(cell: PlannedCell, options: ScalingArguments, done: list[dict]) -> float:
    if cell.epochs is not None:
        return float(cell.epochs)
    same_model = [r for r in done if r["model"] == cell.spec.label and not r.get("substudy")]
    if options.regime == "converged" and same_model:
        return sum(float(r["epochs_trained"]) for r in same_model) / len(same_model)
    return float(options.num_train_epochs)


def estimate_seconds(
    cell: PlannedCell, options: ScalingArguments, done: list[dict], measured_rate: dict[str, float]
) -> float:
    """Seconds `cell` should take: tokens it will process over the model's training throughput."""
    blocks = blocks_for(cell.data_size, options.data.block_size)
    passes = _expected_passes(cell, options, done)
    rule_blocks = blocks_for(cell.rule_tokens, options.data.block_size) if cell.rule_tokens else None
    # Only the batch and the passes are needed here; the width only changes the learning rate.
    plan = cell_plan(options, blocks, REFERENCE_WIDTH, cell.epochs, rule_blocks)
    tokens = blocks * options.data.block_size * min(passes, plan["max_epochs"])
    finished = [r for r in done if r["model"] == cell.spec.label and r.get("train_runtime_s")]
    if finished:
        rate = sum(r["tokens_seen"] for r in finished) / sum(r["train_runtime_s"] for r in finished)
    else:
        rate = measured_rate[cell.spec.label]
    # Small batches run far below the measured rate (per-step overhead dominates); scale by the batch ratio.
    batch_penalty = math.sqrt(options.per_device_train_batch_size / plan["batch_size"])
    return tokens / rate * batch_penalty


def trim_to_budget(
    cells: list[PlannedCell], options: ScalingArguments, done: list[dict], measured_rate: dict[str, float]
) -> tuple[list[PlannedCell], list[PlannedCell], float]:
    """Drop cells, the most expensive main-grid cell first, until the estimate fits --budget_minutes.

    Returns (kept, dropped, estimated seconds of the kept cells). The repetition sub-study goes before the
    main grid does: without the grid there is no study.
    """
    estimates = [estimate_seconds(cell, options, done, measured_rate) for cell in cells]
    kept = list(range(len(cells)))
    dropped: list[int] = []
    if options.budget_minutes is not None:
        budget = options.budget_minutes * 60
        while kept and sum(estimates[index] for index in kept) > budget:
            substudy = [index for index in kept if cells[index].substudy]
            victim = max(substudy or kept, key=lambda index: estimates[index])
            kept.remove(victim)
            dropped.append(victim)
    return [cells[i] for i in kept], [cells[i] for i in dropped], sum(estimates[i] for i in kept)


def assign_to_workers(
    cells: list[PlannedCell],
    workers: int,
    options: ScalingArguments,
    done: list[dict],
    rates: dict[str, float],
) -> list[list[PlannedCell]]:
    """Longest cell first to the least-loaded worker, so the workers finish at about the same time."""
    loads = [0.0] * workers
    shares: list[list[PlannedCell]] = [[] for _ in range(workers)]
    for cell in sorted(cells, key=lambda cell: -estimate_seconds(cell, options, done, rates)):
        target = loads.index(min(loads))
        shares[target].append(cell)
        loads[target] += estimate_seconds(cell, options, done, rates)
    return shares
