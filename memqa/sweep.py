"""Run independent training jobs in parallel worker processes, one torch thread each.

Memory networks are small: one thread per run is the fastest use of a CPU, so N cores run
N jobs at once. Workers stream per-epoch progress back through a queue.
"""

from __future__ import annotations

import multiprocessing
import queue
import signal
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing.managers import SyncManager
from typing import Any

from memqa.data.batching import MemqaWarning
from memqa.train import EpochRecord

LabelledEpochCallback = Callable[[str, int, EpochRecord, int], None]  # (label, repeat, record, total epochs)
_POLL_SECONDS = 0.2


def run_parallel(function: Callable[..., Any], jobs: Sequence[tuple], workers: int,
                 on_epoch: LabelledEpochCallback | None = None) -> list[Any]:
    """`function(*job, on_epoch)` for every job in `workers` processes; results in job order
    (None results, from jobs interrupted before their first epoch, are left out)."""
    context = multiprocessing.get_context("spawn")
    manager = SyncManager(ctx=context)
    manager.start(signal.signal, (signal.SIGINT, signal.SIG_IGN))  # Ctrl-C must not kill the event queue
    with manager:
        events = manager.Queue()
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker) as pool:
            futures = [pool.submit(_run_job, function, job, events) for job in jobs]
            pending = set(futures)
            try:
                while pending:
                    _, pending = wait(pending, timeout=_POLL_SECONDS, return_when=FIRST_COMPLETED)
                    _drain(events, on_epoch)
            except KeyboardInterrupt:
                for future in futures:
                    future.cancel()
                wait(futures)  # running workers got the interrupt too: they save their best so far
            _drain(events, on_epoch)
            results = [f.result() for f in futures if f.done() and not f.cancelled()]
    return [r for r in results if r is not None]


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)
    # Interruptible even when started with SIGINT ignored (`nohup memqa train ... &`): the parent passes
    # a SIGTERM on as SIGINT, and each worker then saves its best so far.
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _run_job(function: Callable[..., Any], job: tuple, events) -> Any:
    label = getattr(job[-1], "label", str(job))
    report = lambda repeat, record, total: events.put(("epoch", (label, repeat, record, total)))  # noqa: E731
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MemqaWarning)
        result = function(*job, report)
    for warning in caught:  # shown by the parent, where the user is looking
        events.put(("warning", f"{label}: {warning.message}"))
    return result


def _drain(events, on_epoch: LabelledEpochCallback | None) -> None:
    while True:
        try:
            kind, payload = events.get_nowait()
        except queue.Empty:
            return
        if kind == "warning":
            warnings.warn(payload, MemqaWarning, stacklevel=2)
        elif on_epoch:
            on_epoch(*payload)
