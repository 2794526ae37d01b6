"""The output folder of a training run: one run at a time (a lock), no run over another run's files, a failed
start leaves nothing behind, only complete checkpoints are resumed from, and a folder that cannot be written or a
disk too full for one checkpoint is refused before the first file is written."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from safetensors import SafetensorError, safe_open

if TYPE_CHECKING:
    from transformers import TrainingArguments

LOCK_NAME = ".wenlm.lock"
CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")

logger = logging.getLogger(__name__)


class FolderInUseError(FileExistsError):
    """Another live run holds the output folder's lock (a FileExistsError, so the CLI prints it as a sentence)."""


class FolderLock:
    """An exclusive lock on a folder, held by one process for a run's lifetime.

    fcntl.flock on a file in the folder rather than an O_EXCL marker file: the kernel drops a flock when its
    process dies, however it dies (kill -9 included), so a lock left by a killed run is never mistaken for a live
    one and needs no PID probing to clear. The file holds the holder's PID only so that the refusal can name it.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                os.close(fd)
                if error.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                raise FolderInUseError(
                    f"Output folder {self.folder} is in use by another wenlm run (PID {self._holder()}, lock file "
                    f"{self.path}). Wait for that run to finish or stop it, or choose another --output_dir."
                ) from None
            # The previous holder may have removed the file between our open and our lock: then we locked a
            # file no one else can see, and must lock the one now at the path instead.
            try:
                same_file = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same_file = False
            if same_file:
                break
            os.close(fd)
        stale = os.pread(fd, 32, 0).decode(errors="replace").strip()
        if stale:
            logger.warning(
                "Cleared the lock on %s left by PID %s, which is no longer running.", self.folder, stale
            )
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd

    def _holder(self) -> str:
        try:
            return self.path.read_text().strip() or "unknown"
        except OSError:
            return "unknown"

    def release(self) -> None:
        if self.fd is None:
            return
        # Unlinked while still held, so that no other run can lock the old file after we let go of it.
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.close(self.fd)
        self.fd = None


@contextlib.contextmanager
def claim_output_folder(folder: str | Path, main_process: bool = True) -> Iterator[None]:
    """Hold the folder's lock for the run, and if the run fails before writing its first checkpoint, remove the
    files it created (and the folder, if it made it), so that the same command can simply be run again. After a
    checkpoint exists everything is kept: `--resume_from_checkpoint last` continues from it."""
    if (
        not main_process
    ):  # one lock per job: the other processes of a torchrun job write inside the main one's run
        yield
        return
    folder = Path(folder)
    check_writable(folder)  # the lock is the first file written: a read-only folder is named, not a traceback
    existed = folder.is_dir()
    before = set(os.listdir(folder)) if existed else set()
    lock = FolderLock(folder)
    lock.acquire()
    try:
        yield
    except BaseException:
        remove_files_of_a_failed_start(folder, before)
        raise
    finally:
        lock.release()
        if not existed and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def remove_files_of_a_failed_start(folder: Path, before: set[str]) -> None:
    created = [name for name in os.listdir(folder) if name not in before and name != LOCK_NAME]
    if any(CHECKPOINT_PATTERN.match(name) for name in created):
        logger.warning(
            "The run failed; its checkpoints in %s are kept: add --resume_from_checkpoint last to "
            "continue it.",
            folder,
        )
        return
    if "model.safetensors" in created and holds_finished_model(folder):
        # Failed after the model was saved (the push to the Hub, say): the trained model is the run's result.
        logger.warning("The run failed after saving its model; the model in %s is kept.", folder)
        return
    for name in created:
        path = folder / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def checkpoint_problem(checkpoint: Path) -> str | None:
    """Why a checkpoint folder cannot be resumed from (a file missing or damaged), or None when it is complete."""
    state = checkpoint / "trainer_state.json"
    weights = checkpoint / "model.safetensors"
    if not state.is_file():
        return f"{state} is missing"
    if not weights.is_file() and not (checkpoint / "model.safetensors.index.json").is_file():
        return f"{weights} is missing"
    try:
        json.loads(state.read_text(encoding="utf-8"))
    except (ValueError, OSError) as error:
        return f"{state} is damaged ({error})"
    if weights.is_file():
        try:
            with safe_open(str(weights), framework="pt"):
                pass
        except (SafetensorError, OSError) as error:
            return f"{weights} is damaged, probably cut short while it was written ({error})"
    return None


def last_complete_checkpoint(folder: str | Path) -> str | None:
    """The highest-numbered complete checkpoint-N in ``folder``; incomplete ones (a run killed while writing one)
    are skipped with a warning naming them."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    numbered = [
        (int(match.group(1)), path)
        for path in folder.iterdir()
        if path.is_dir() and (match := CHECKPOINT_PATTERN.match(path.name))
    ]
    for _, path in sorted(numbered, reverse=True):
        problem = checkpoint_problem(path)
        if problem is None:
            return str(path)
        logger.warning("Skipping incomplete checkpoint %s: %s.", path, problem)
    return None


def check_checkpoint(checkpoint: str | Path) -> str:
    """An explicitly given checkpoint, refused with what is wrong and what to do when it cannot be resumed."""
    path = Path(checkpoint)
    if not path.is_dir():
        raise FileNotFoundError(f"--resume_from_checkpoint {checkpoint}: no such checkpoint folder.")
    problem = checkpoint_problem(path)
    if problem is not None:
        raise ValueError(
            f"--resume_from_checkpoint {checkpoint}: {problem}. Resume from an earlier checkpoint, or pass "
            "--resume_from_checkpoint last to take the last complete one."
        )
    return str(path)


def holds_finished_model(folder: Path) -> bool:
    return (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()


def refuse_foreign_files(output_dir: Path, checkpoint: str | None) -> None:
    """Refuse a run whose output folder holds another run's files. Resuming is allowed into the folder the
    checkpoint belongs to (unless that run has finished) or into an empty folder."""
    entries = [path for path in output_dir.iterdir() if path.name != LOCK_NAME] if output_dir.is_dir() else []
    if not entries:
        return
    if holds_finished_model(output_dir):
        raise FileExistsError(
            f"Output folder {output_dir} already holds files: a finished model (config.json, model.safetensors), "
            "which wenlm never overwrites. Choose another --output_dir, or delete the folder first."
        )
    if checkpoint is None:
        raise FileExistsError(
            f"Output folder {output_dir} already holds files. Pass --resume_from_checkpoint last to continue "
            "its run, choose another --output_dir, or delete the folder: wenlm never overwrites a model silently."
        )
    if Path(checkpoint).resolve().parent != output_dir.resolve():
        raise FileExistsError(
            f"Output folder {output_dir} already holds files of another run, and checkpoint {checkpoint} does not "
            f"belong to it. Resume into the checkpoint's own folder (--output_dir {Path(checkpoint).parent}) or "
            "into an empty --output_dir."
        )


# ------------------------------------------------------------------------------------------ disk problems

# Bytes per parameter of one checkpoint: float32 weights (4) and, for trained parameters, AdamW's two moment
# tensors (8) plus slack for the scheduler, RNG and trainer state files (4).
WEIGHT_BYTES, TRAINED_BYTES = 4, 12
DISK_ERRNOS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}


class OutputDiskError(ValueError):
    """The output folder cannot hold the run's files (a ValueError, so the CLI prints it as a sentence)."""


def existing_ancestor(folder: Path) -> Path:
    """The folder itself when it exists, else its nearest existing parent (where it would be created)."""
    folder = Path(folder).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def check_writable(folder: str | Path, option: str = "--output_dir") -> None:
    """Refuse an output folder that cannot be written (read-only disk, no permission) before anything is."""
    folder = Path(folder)
    place = existing_ancestor(folder)
    if not place.is_dir():
        raise OutputDiskError(f"{option} {folder}: {place} is a file, not a folder. Choose another {option}.")
    try:
        # An unnamed temporary file: the probe leaves nothing behind, even in a parent folder.
        with tempfile.TemporaryFile(dir=place, prefix=".wenlm-write-test-"):
            pass
    except OSError as error:
        raise OutputDiskError(
            f"{option} {folder}: cannot write in {place} ({error.strerror or error}). Make it writable "
            f"(e.g. chmod u+w {place}, or remount the disk read-write) or choose another {option}."
        ) from None


def checkpoint_bytes(parameters: int, trained_parameters: int | None = None, tokenizer_bytes: int = 0) -> int:
    """About how many bytes one checkpoint takes: the weights, the optimizer state of the trained parameters
    (all of them unless told otherwise, as in pretraining) and the tokenizer files."""
    trained = parameters if trained_parameters is None else trained_parameters
    return WEIGHT_BYTES * parameters + TRAINED_BYTES * trained + tokenizer_bytes


def tokenizer_bytes(tokenizer) -> int:
    """The size of the tokenizer's tokenizer.json, which dominates its saved files."""
    serialisable_json = getattr(tokenizer, "serialisable_json", None)  # wenlm's jieba tokenizer, see packing
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if callable(serialisable_json):
        return len(serialisable_json().encode())
    return len(backend.to_str().encode()) if backend is not None else 0


def format_bytes(count: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} TB"


def check_free_space(folder: str | Path, needed: int, option: str = "--output_dir") -> None:
    """Refuse a run whose output disk has no room for one checkpoint."""
    place = existing_ancestor(Path(folder))
    free = shutil.disk_usage(place).free
    if free < needed:
        raise OutputDiskError(
            f"{option} {folder}: one checkpoint needs about {format_bytes(needed)} (model weights and optimizer "
            f"state), but the disk of {place} has only {format_bytes(free)} free. Free some space or choose "
            f"another {option} on a larger disk."
        )


def check_output_disk(folder: str | Path, needed: int, option: str = "--output_dir") -> None:
    """Both checks, run before the run writes its first file (see checkpoint_bytes for ``needed``)."""
    check_writable(folder, option)
    check_free_space(folder, needed, option)


@contextlib.contextmanager
def disk_errors_named(folder: str | Path, option: str = "--output_dir") -> Iterator[None]:
    """Turn a full, read-only or forbidden disk met while training or saving into a sentence that says what was
    kept: the last complete checkpoint, from which `--resume_from_checkpoint last` continues."""
    try:
        yield
    except OSError as error:
        why = DISK_ERRNOS.get(error.errno)
        if why is None:
            raise
        where = f" ({error.filename})" if error.filename else ""
        checkpoint = last_complete_checkpoint(folder)
        kept = (
            f"The checkpoints are kept; the last complete one is {checkpoint}: once there is room, run the same "
            "command with --resume_from_checkpoint last to continue from it."
            if checkpoint
            else "No checkpoint was complete, so the run has to start over."
        )
        raise OutputDiskError(
            f"Writing the run's files in {option} {folder} failed: {why}{where}. {kept} Free some space (or fix "
            f"the permissions), or choose another {option}."
        ) from None


def check_output_dir(training_args: TrainingArguments) -> str | None:
    """Return the checkpoint to resume from (only a complete one), and refuse a run whose output folder holds
    another run's files, whatever the flags."""
    output_dir = Path(training_args.output_dir)
    resume = training_args.resume_from_checkpoint
    checkpoint = None
    if resume in ("True", "true", "last"):
        checkpoint = last_complete_checkpoint(output_dir)
        if checkpoint is None:
            raise ValueError(
                f"--resume_from_checkpoint last: no complete checkpoint-* folder found in {output_dir} (incomplete "
                "ones are named in the warnings above). Start the run anew with another --output_dir."
            )
    elif resume:
        checkpoint = check_checkpoint(resume)
    # Only the main process judges the folder: the others start while it may already be writing there.
    if training_args.process_index == 0:
        refuse_foreign_files(output_dir, checkpoint)
    return checkpoint
