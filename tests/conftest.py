import os

import pytest
from hub_server import start_hub_server  # standard library only: safe before the variables below are set

# Tests never touch the network; set before transformers/huggingface_hub are imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")

# Under pytest-xdist every worker would otherwise start one torch thread per core, and on a 2-core machine two
# workers' threads then wait on each other (measured: the QA fine-tuning fixture took 239 s instead of ~90 s).
# The CPU is shared out instead; subprocesses the tests start (the `wenlm` CLI, torchrun) inherit the variable.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _WORKERS)))
    import torch  # after the variable: torch reads it when its thread pool starts

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

# Its asserts (a subprocess's exit status) should report like the tests' own.
pytest.register_assert_rewrite("helpers")


@pytest.fixture(scope="module")
def hub():
    """A stand-in Hugging Face Hub on 127.0.0.1 (tests/hub_server.py), one per test module."""
    server = start_hub_server()
    yield server
    server.close()


@pytest.fixture(scope="module")
def wenlm_folder(tmp_path_factory):
    """A tiny random wenlm model folder with its tokenizer (helpers.save_wenlm_folder), one per test module."""
    # Imported here: helpers imports transformers, which modules that never ask for a model need not wait for.
    from helpers import save_wenlm_folder

    return save_wenlm_folder(tmp_path_factory.mktemp("wenlm") / "wenlm")
