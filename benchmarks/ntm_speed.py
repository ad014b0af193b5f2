"""NTM copy-task training: sequences per second, and wall time to converge.

    python benchmarks/ntm_speed.py --threads 2                  # throughput, then one run to convergence (seed 0)
    python benchmarks/ntm_speed.py --threads 2 --seeds 0,1,2,3  # convergence of several seeds, one after another
    python benchmarks/ntm_speed.py --device cuda --batch-sizes 1,8,32,128,512 --seeds 0   # on a GPU
    python benchmarks/ntm_speed.py --threads 1 --compile        # the step through torch.compile (memqa train --compile)

Throughput: training steps (forward, backward, RMSProp) on copy sequences drawn from the training
distribution (lengths 1-20), no evaluation. Convergence: `memqa train --reader ntm --task copy`'s
job with its defaults (batch 8, lr 3e-4, evaluation every 1000 sequences on 256 fixed validation
sequences); "converged" is the first evaluation under 0.1 bit errors per sequence, and the time
is the whole training wall time up to it, evaluations included. Runs stop there (or at --sequences).
With --compile the throughput is timed after the steps that compile, and the convergence time includes
compiling (torch keeps compiled kernels in its cache folder, so a second run compiles faster: set
TORCHINDUCTOR_CACHE_DIR to an empty folder for a first-time figure).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from memqa.models.ntm import NTMSequenceModel
from memqa.ntm_pipeline import NTMTrainRequest, default_configs, train_ntm

CONVERGED_BIT_ERRORS = 0.1  # issue 5's target at training lengths


class Converged(KeyboardInterrupt):
    """Stops the trainer like Ctrl-C does (it keeps the best weights) once the target is met."""


def throughput(batch_size: int, steps: int, seed: int = 0, device: str = "cpu", compile: bool = False) -> float:
    """Training sequences per second at `batch_size` (after two untimed steps: CUDA starts lazily, and
    with `compile` the first step compiles)."""
    task, config, train = default_configs("copy", batch_size=batch_size)
    torch.manual_seed(seed)
    model = NTMSequenceModel(config).to(device)
    if compile:
        model.compile_steps()
    optimizer = model.make_optimizer(train.learning_rate)
    generator = torch.Generator().manual_seed(seed)
    batches = [task.sample(batch_size, generator).to(device) for _ in range(steps + 2)]
    for index, batch in enumerate(batches):
        if index == 2:
            started = _now(device)
        loss = model.loss(batch, model(batch))
        optimizer.zero_grad()
        loss.backward()
        model.clip_gradients(train)
        optimizer.step()
    return steps * batch_size / (_now(device) - started)


def _now(device: str) -> float:
    """The wall clock once `device` has finished the work queued on it."""
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter()


def converge(seed: int, sequences: int, device: str = "cpu", compile: bool = False) -> dict:
    task, config, train = default_configs("copy", sequences)
    found: dict = {}

    def on_point(point: dict, total: int) -> None:
        if point["valid_bit_errors"] < CONVERGED_BIT_ERRORS:
            found.update(point)
            raise Converged

    with tempfile.TemporaryDirectory() as folder:
        request = NTMTrainRequest(Path(folder) / "copy", task, config, dataclasses.replace(train, seed=seed),
                                  device=device, compile=compile)
        started = time.perf_counter()
        train_ntm(request, on_point=on_point)
        seconds = time.perf_counter() - started
    return {"seed": seed, "converged": bool(found), "sequences": found.get("sequences"),
            "seconds": round(found.get("seconds", seconds), 1), "valid_bit_errors": found.get("valid_bit_errors")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-sizes", default="1,8,16,32")
    parser.add_argument("--steps", type=int, default=30, help="training steps timed per batch size")
    parser.add_argument("--seeds", default="0", help="seeds to train to convergence, e.g. 0,1,2 (empty: none)")
    parser.add_argument("--sequences", type=int, default=30_000, help="give up on convergence after this many")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--compile", action="store_true", help="torch.compile the NTM's step (memqa train --compile)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    machine = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch thread(s)"
    if args.device == "cuda":
        machine += f", {torch.cuda.get_device_name()}"
    summary = {"machine": machine, "device": args.device, "compile": args.compile, "torch": torch.__version__, "throughput": {},
               "convergence": []}
    if not args.skip_throughput:
        for batch_size in map(int, args.batch_sizes.split(",")):
            rate = throughput(batch_size, args.steps, device=args.device, compile=args.compile)
            summary["throughput"][batch_size] = round(rate, 1)
            print(f"batch {batch_size:>3}: {rate:7.1f} training sequences/s", flush=True)
    for seed in [int(seed) for seed in args.seeds.split(",") if seed]:
        row = converge(seed, args.sequences, args.device, args.compile)
        summary["convergence"].append(row)
        print(f"seed {seed}: " + (f"under {CONVERGED_BIT_ERRORS} bit errors after {row['sequences']} sequences, "
                                  f"{row['seconds']} s" if row["converged"] else f"not converged in {args.sequences}"),
              flush=True)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
