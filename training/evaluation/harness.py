"""`wenlm evaluate --harness TASKS`: lm-evaluation-harness (`lm_eval.simple_evaluate`) on a wenlm model.

Two kinds of task names are accepted, comma-separated or several:

- the wenlm tasks shipped in ``harness_tasks/``: ``wenlm_qa_en``, ``wenlm_qa_zh`` (greedy answer, exact match) and
  ``wenlm_classify_en``, ``wenlm_classify_zh`` (multiple choice over the labels, acc/acc_norm); ``wenlm_qa``,
  ``wenlm_classify`` and ``wenlm`` name the pairs and all four. Their rows come from ``--validation_files`` (qa
  rows hold context/question/answer, classify rows text/label, as `wenlm corpus` writes them; each file goes to
  the tasks its rows fit) or, without files, from the built-in validation sets (seed 1, as `wenlm corpus --seed 1`
  writes them). A row is Chinese when its ``lang`` says so or, without one, when its question (qa) or text
  (classify) starts in Chinese. The rows are written per language to JSON lines in a temporary folder and the
  task's YAML gets them as ``dataset_kwargs.data_files``. Chinese tasks put nothing between prompt and answer
  (``target_delimiter: ""``); English ones a space, as lm-eval's own tasks do.
- any task, group or tag lm-evaluation-harness knows (hellaswag, arc_easy, cmmlu, ceval-valid, ...), passed as it
  is. Its data comes through `datasets`; offline (HF_DATASETS_OFFLINE=1) it must already be in the datasets cache,
  and a task whose data cannot be loaded is named in the error instead of failing deep inside lm-eval.

The scores are lm-eval's (fractions 0-1, with their standard errors). For a local model folder each requested name
becomes an entry of ``eval_results.json`` (a group with an aggregate score as one entry; a tag, or a group without
one, as one entry per task), which the model card's model-index reads.
"""

from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path

import yaml

from wenlm.training.args import EvaluateArguments, ModelSourceArguments
from wenlm.training.corpus.sampling import VALIDATION_SEED_OFFSET
from wenlm.training.corpus.tasks import make_task_rows
from wenlm.training.corpus.vocabulary import SIMPLE_WORDS
from wenlm.training.model_folder import check_model_folder, hub_errors_named
from wenlm.training.utils.text import is_cjk_char

HARNESS_TASKS_DIR = Path(__file__).with_name("harness_tasks")
# name -> (kind of rows, language)
WENLM_TASKS = {
    "wenlm_qa_en": ("qa", "en"),
    "wenlm_qa_zh": ("qa", "zh"),
    "wenlm_classify_en": ("classify", "en"),
    "wenlm_classify_zh": ("classify", "zh"),
}
TASK_SETS = {
    "wenlm_qa": ("wenlm_qa_en", "wenlm_qa_zh"),
    "wenlm_classify": ("wenlm_classify_en", "wenlm_classify_zh"),
    "wenlm": tuple(WENLM_TASKS),
}
# Rows drawn per kind from the built-in validation set when no --validation_files are given (about half per
# language); --max_samples cuts each task further.
BUILTIN_ROWS = 1000
# What each wenlm task's entry in eval_results.json reports as its model-index task type; lm-eval's own tasks
# are all scored from a causal LM's likelihoods or generations.
TASK_TYPES = {"qa": "question-answering", "classify": "text-classification"}
STANDARD_TASK_TYPE = "text-generation"
LANGUAGE_NAMES = {"en": "English", "zh": "Chinese"}
QA_FIELDS = ("context", "question", "answer")
INSTALL_HINT = 'pip install "wenlm[harness]" (or pip install lm-eval)'


def harness_task_names(requested: list[str]) -> list[str]:
    """The task names of `--harness`, split at commas, the wenlm sets expanded, each once in order."""
    names: list[str] = []
    for item in requested:
        for name in (part.strip() for part in item.split(",")):
            for expanded in TASK_SETS.get(name, (name,)):
                if expanded and expanded not in names:
                    names.append(expanded)
    if not names:
        raise ValueError("--harness: no task names given (e.g. --harness wenlm_qa_zh,arc_easy).")
    return names


def row_language(row: dict, text: str) -> str:
    """The row's `lang` when it is en or zh; else 'zh' when the first letter of `text` is Chinese and 'en'
    otherwise (a bilingual story that opens in English counts as English)."""
    if row.get("lang") in LANGUAGE_NAMES:
        return row["lang"]
    first = next((char for char in text if char.isalpha()), "")
    return "zh" if first and is_cjk_char(first) else "en"


# ----------------------------------------------------------------------------------------------------------
# Rows of the wenlm tasks


def row_kind(row: dict, options: EvaluateArguments) -> str | None:
    if all(isinstance(row.get(key), str) for key in QA_FIELDS):
        return "qa"
    if isinstance(row.get(options.text_column), str) and row.get(options.label_column) is not None:
        return "classify"
    return None


def rows_from_files(
    file_rows: dict[str, list[tuple[str, int, dict]]], options: EvaluateArguments, kinds: set[str]
) -> dict[str, tuple[list[dict], str]]:
    """(rows, description) per kind from the rows of each --validation_files file (read by `wenlm evaluate`);
    each file goes to the kind its first row fits."""
    found: dict[str, tuple[list[dict], list[str]]] = {}
    for path, rows in file_rows.items():
        kind = row_kind(rows[0][2], options)
        if kind is None:
            raise ValueError(
                f"--validation_files {path}: its rows fit neither the wenlm qa tasks (fields "
                f"{', '.join(QA_FIELDS)}) nor the classify tasks ({options.text_column!r}, "
                f"{options.label_column!r}; see --text_column/--label_column)."
            )
        for file, number, row in rows:
            if row_kind(row, options) != kind:
                raise ValueError(f"{file} row/line {number}: not a {kind} row like the file's first one.")
        found.setdefault(kind, ([], []))
        found[kind][0].extend(row for _, _, row in rows)
        found[kind][1].append(path)
    for kind in sorted(kinds - set(found)):
        raise ValueError(
            f"--validation_files: none of the files has {kind} rows, which the wenlm_{kind}_* "
            f"harness tasks need; add such a file or leave --validation_files out to use the "
            f"built-in {kind} validation set."
        )
    if set(found) - kinds:
        extra = [path for kind in sorted(set(found) - kinds) for path in found[kind][1]]
        raise ValueError(
            f"--validation_files {' '.join(extra)}: no requested harness task reads these rows; "
            f"ask for the wenlm task that does (see --harness) or leave the files out."
        )
    return {kind: (rows, ", ".join(paths)) for kind, (rows, paths) in found.items()}


def builtin_rows(kinds: set[str]) -> dict[str, tuple[list[dict], str]]:
    seed = VALIDATION_SEED_OFFSET
    return {
        kind: (
            make_task_rows(kind, BUILTIN_ROWS, seed=seed),
            f"built-in {kind} validation set ({BUILTIN_ROWS} rows, seed {seed})",
        )
        for kind in kinds
    }


def task_rows(kind: str, language: str, rows: list[dict], options: EvaluateArguments) -> list[dict]:
    """The rows of one wenlm task in the fields its YAML reads."""
    if kind == "qa":
        return [
            {key: row[key] for key in QA_FIELDS}
            for row in rows
            if row_language(row, row["question"]) == language
        ]
    labels = sorted({str(row[options.label_column]) for row in rows})
    # The built-in labels are English weather keys; the Chinese task offers them in Chinese.
    names = [SIMPLE_WORDS["weather"].get(label, {}).get(language, label) for label in labels]
    return [
        {
            "text": row[options.text_column],
            "label": str(row[options.label_column]),
            "choices": names,
            "gold": labels.index(str(row[options.label_column])),
        }
        for row in rows
        if row_language(row, row[options.text_column]) == language
    ]


def read_task_yaml(name: str) -> dict:
    """A shipped task's YAML, the file it includes (the part the languages share) merged under it."""
    config = yaml.safe_load((HARNESS_TASKS_DIR / f"{name}.yaml").read_text(encoding="utf-8"))
    shared = config.pop("include", None)
    if shared is None:
        return config
    return yaml.safe_load((HARNESS_TASKS_DIR / shared).read_text(encoding="utf-8")) | config


def wenlm_task_configs(
    names: list[str], options: EvaluateArguments, file_rows: dict[str, list], folder: Path
) -> dict[str, tuple[dict, str]]:
    """(lm-eval task config, data description) of each wenlm task in `names`, its data written under `folder`."""
    kinds = {WENLM_TASKS[name][0] for name in names}
    sources = rows_from_files(file_rows, options, kinds) if file_rows else builtin_rows(kinds)
    configs = {}
    for name in names:
        kind, language = WENLM_TASKS[name]
        rows, description = sources[kind]
        selected = task_rows(kind, language, rows, options)
        if not selected:
            raise ValueError(
                f"--harness {name}: {description} has no {LANGUAGE_NAMES[language]} {kind} rows."
            )
        data_file = folder / f"{name}.jsonl"
        data_file.write_text(
            "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in selected), encoding="utf-8"
        )
        config = read_task_yaml(name)
        # A cache beside the data: the rows are rewritten on every run and need not outlive it.
        config["dataset_kwargs"] = {
            "data_files": {"validation": str(data_file)},
            "cache_dir": str(folder / "cache"),
        }
        configs[name] = (config, f"{description}, {LANGUAGE_NAMES[language]} rows")
    return configs


# ----------------------------------------------------------------------------------------------------------
# Loading and running


@functools.lru_cache(maxsize=2)
def task_manager(include_defaults: bool):
    """lm-eval's task registry, built once per process: indexing its thousands of task YAMLs takes seconds, and the
    wenlm tasks are given as configs and need none of it."""
    # why: lm-eval is an optional dependency (the harness extra)
    from lm_eval.tasks import TaskManager

    return TaskManager(include_defaults=include_defaults)


def leaf_tasks(items: list) -> list:
    """The tasks of loaded Task/Group objects, a group's members in its order."""
    return [
        task
        for item in items
        for task in (item.get_all_tasks() if hasattr(item, "get_all_tasks") else [item])
    ]


def load_task(manager, name: str, spec):
    """The Task/Group objects of one requested name (a wenlm task as its config), its data loaded; for a standard
    task a clear error when that fails."""
    if isinstance(spec, dict):
        return list(manager.load([spec])["tasks"].values())
    if name not in manager.all_tasks and not Path(name).is_file():
        raise ValueError(
            f"--harness {name}: not a task, group or tag lm-evaluation-harness knows, nor a wenlm "
            f"task ({', '.join([*WENLM_TASKS, *TASK_SETS])}). `lm-eval ls tasks` lists lm-eval's."
        )
    try:
        loaded = manager.load([spec])
    # datasets, the Hub client and task code raise many types here; each means the task cannot be built.
    except Exception as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(
            f"--harness {name}: its data could not be loaded ({type(error).__name__}: {reason}). "
            "A standard task's dataset must be downloaded into the Hugging Face datasets cache "
            "first: run it once with network access (HF_DATASETS_OFFLINE unset); offline "
            "(HF_DATASETS_OFFLINE=1) only cached data can be read."
        ) from None
    if name in loaded["groups"]:
        return [loaded["groups"][name]]
    return list(loaded["tasks"].values())


def load_harness_model(source: ModelSourceArguments, options: EvaluateArguments):
    # why: lm-eval is an optional dependency (the harness extra)
    from lm_eval.models.huggingface import HFLM

    check_model_folder(source.model)
    with hub_errors_named(source.model):
        return HFLM(
            pretrained=source.model,
            revision=source.revision or "main",
            trust_remote_code=True,
            device="cpu",
            batch_size=options.per_device_eval_batch_size,
        )


def run_harness(
    source: ModelSourceArguments,
    options: EvaluateArguments,
    file_rows: dict[str, list[tuple[str, int, dict]]],
) -> tuple[dict, dict]:
    """(lm-eval's results, the eval_results.json entries of the requested names).

    `file_rows` holds the (file, row number, row) triples of each --validation_files file, for the wenlm tasks.
    """
    try:
        # why: lm-eval is an optional dependency (the harness extra); importing it takes seconds
        from lm_eval import simple_evaluate
    except ImportError:
        raise ImportError(f"--harness needs lm-evaluation-harness: {INSTALL_HINT}.") from None
    names = harness_task_names(options.harness)
    wenlm_names = [name for name in names if name in WENLM_TASKS]
    if file_rows and not wenlm_names:
        raise ValueError(
            "--validation_files: only the wenlm_* harness tasks read them; standard tasks bring "
            "their own data. Leave the files out."
        )
    manager = task_manager(include_defaults=len(wenlm_names) < len(names))
    with tempfile.TemporaryDirectory(prefix="wenlm-harness-") as folder:
        configs = wenlm_task_configs(wenlm_names, options, file_rows, Path(folder)) if wenlm_names else {}
        objects = {
            name: load_task(manager, name, configs[name][0] if name in configs else name) for name in names
        }
        model = load_harness_model(source, options)
        results = simple_evaluate(
            model=model,
            tasks=[item for items in objects.values() for item in items],
            num_fewshot=options.num_fewshot,
            limit=options.max_samples,
            task_manager=manager,
            log_samples=True,
            bootstrap_iters=1000,
        )
    data = {
        name: configs[name][1] if name in configs else standard_data(items) for name, items in objects.items()
    }
    return results, harness_entries(results, objects, data)


def standard_data(items: list) -> str:
    """Where a standard task's rows come from: the datasets of its tasks."""
    sources = []
    for task in leaf_tasks(items):
        source = "/".join(part for part in (task.config.dataset_path, task.config.dataset_name) if part)
        if source not in sources:
            sources.append(source)
    return ", ".join(sources[:3]) + (f" and {len(sources) - 3} more" if len(sources) > 3 else "")


# ----------------------------------------------------------------------------------------------------------
# Results


def metric_values(scores: dict) -> tuple[dict, dict]:
    """lm-eval's `metric,filter` scores as ({metric: value}, {metric: standard error}), a filter other than none
    named in the metric (`exact_match_strict-match`). The errors are kept apart so that the model card's
    model-index lists the scores only."""
    values, errors = {}, {}
    for key, value in scores.items():
        metric, comma, filter_name = key.partition(",")
        if comma and isinstance(value, (int, float)) and not isinstance(value, bool):
            base = metric.removesuffix("_stderr")
            name = base if filter_name == "none" else f"{base}_{filter_name}"
            (errors if metric.endswith("_stderr") else values)[name] = float(value)
    return values, errors


def harness_entries(results: dict, objects: dict[str, list], data: dict[str, str]) -> dict[str, dict]:
    """eval_results.json entries: one per requested name that has scores of its own, else one per task of it."""
    # why: lm-eval is an optional dependency (the harness extra)
    import lm_eval

    entries = {}
    for name, items in objects.items():
        tasks = [task.task_name for task in leaf_tasks(items)]
        own = metric_values(results["results"].get(name, {}))
        for entry_name in [name] if own[0] else tasks:
            counted = tasks if entry_name == name else [entry_name]
            shots = {results["n-shot"].get(task) for task in counted}
            metrics, errors = own if entry_name == name else metric_values(results["results"][entry_name])
            entries[entry_name] = {
                "metrics": metrics,
                "stderr": errors,
                "data": data[name],
                "task_type": TASK_TYPES[WENLM_TASKS[name][0]] if name in WENLM_TASKS else STANDARD_TASK_TYPE,
                "num_samples": sum(results["n-samples"][task]["effective"] for task in counted),
                "harness": {
                    "lm_eval": lm_eval.__version__,
                    "num_fewshot": shots.pop() if len(shots) == 1 else None,
                    "limit": results["config"].get("limit"),
                },
            }
    return entries
