"""Pictures of NTM runs as PNG files (matplotlib, the optional extra `memqa[plots]`): learning
curves, generalisation across test sizes, and the paper's Figure 6 view of one sequence (inputs,
outputs, write and read weightings over time)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from memqa.errors import ConfigError

TARGET_BIT_ERRORS = 0.1  # issue 5: copy under 0.1 bit errors per sequence at training lengths
ONE_BIT = 1.0  # the paper's "under 1 bit per sequence" (associative recall, §4.3)
_DPI = 120


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("plots need matplotlib: pip install 'memqa[plots]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=_DPI, bbox_inches="tight")
    _pyplot().close(figure)
    return path


def plot_learning_curves(curves: Mapping[str, Sequence[Mapping[str, Any]]], path: str | os.PathLike,
                         title: str) -> Path:
    """Cost per sequence (bits; training mean and validation) and validation bit errors per sequence
    against sequences seen, one line per run. `curves`: label -> the curve saved in a run's info."""
    plt = _pyplot()
    figure, (cost_axis, error_axis) = plt.subplots(1, 2, figsize=(11, 4))
    for index, (label, curve) in enumerate(curves.items()):
        colour = f"C{index}"
        seen = [point["sequences"] / 1000 for point in curve]
        cost_axis.plot(seen, [p["train_cost_bits"] for p in curve], color=colour, alpha=0.35, linewidth=1)
        cost_axis.plot(seen, [p["valid_cost_bits"] for p in curve], color=colour, label=label, linewidth=1.6)
        error_axis.plot(seen, [p["valid_bit_errors"] for p in curve], color=colour, label=label, linewidth=1.6)
    cost_axis.set(xlabel="sequences seen (thousands)", ylabel="cost per sequence (bits)",
                  title="cost (thick: validation, faint: training mean)")
    cost_axis.set_yscale("symlog", linthresh=1)
    cost_axis.set_ylim(bottom=0)
    error_axis.axhline(TARGET_BIT_ERRORS, color="grey", linestyle="--", linewidth=1, label=f"{TARGET_BIT_ERRORS} bit errors")
    error_axis.set_yscale("symlog", linthresh=0.1)
    error_axis.set_ylim(bottom=0)
    error_axis.set(xlabel="sequences seen (thousands)", ylabel="bit errors per sequence (validation)",
                   title="bit errors at training sizes")
    for axis in (cost_axis, error_axis):
        axis.grid(alpha=0.3)
    error_axis.legend(fontsize=8)
    figure.suptitle(title)
    return _save(figure, path)


def plot_generalisation(scores: Mapping[str, Sequence[Any]], path: str | os.PathLike, *, size_name: str,
                        title: str, trained_up_to: int | None = None) -> Path:
    """Bit errors per sequence against test size, one line per run. `scores`: label -> SizeScores."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6.5, 4))
    for index, (label, rows) in enumerate(scores.items()):
        axis.plot([s.size for s in rows], [s.bit_errors for s in rows], marker="o", color=f"C{index}", label=label)
    axis.axhline(ONE_BIT, color="grey", linestyle="--", linewidth=1, label="1 bit error per sequence")
    if trained_up_to is not None:
        axis.axvline(trained_up_to, color="black", linestyle=":", linewidth=1, label=f"largest trained {size_name}")
    axis.set_yscale("symlog", linthresh=0.1)
    axis.set_ylim(bottom=0)
    sizes = sorted({s.size for rows in scores.values() for s in rows})
    if len(sizes) <= 12:
        axis.set_xticks(sizes)
    axis.set(xlabel=f"test {size_name}", ylabel="bit errors per sequence", title=title)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    return _save(figure, path)


def plot_episode(inputs: torch.Tensor, targets: torch.Tensor, output_logits: torch.Tensor,
                 write_weightings: torch.Tensor, read_weightings: torch.Tensor, path: str | os.PathLike,
                 title: str, heads: tuple[int, int] = (0, 0)) -> Path:
    """The paper's Figure 6 for one sequence: inputs (T, I), targets (T_out, O) and outputs (T, O)
    over time on top, write and read weightings (T, N) of one head each below (numbered `heads`,
    from 0), time running right. Memory rows are cropped to the circular span the heads focused on
    (weight > 0.2 at some step)."""
    plt = _pyplot()
    steps, answer_steps = inputs.shape[0], targets.shape[0]
    expected = torch.zeros(steps, targets.shape[1])
    expected[-answer_steps:] = targets
    rows = focused_rows(write_weightings, read_weightings)
    panels = [("inputs", inputs, "bit"), ("targets", expected, "bit"), ("outputs σ(logits)", output_logits.sigmoid(), "bit"),
              (f"write weightings (write head {heads[0] + 1})", write_weightings[:, rows], "memory row"),
              (f"read weightings (read head {heads[1] + 1})", read_weightings[:, rows], "memory row")]
    figure, axes = plt.subplots(len(panels), 1, figsize=(max(6.0, steps / 8), 9),
                                gridspec_kw={"height_ratios": [1, 1, 1, 2.5, 2.5]}, sharex=True)
    for axis, (name, values, ylabel) in zip(axes, panels):
        axis.imshow(values.T.detach().cpu(), aspect="auto", cmap="gray_r", vmin=0, vmax=1, interpolation="nearest",
                    extent=(-0.5, steps - 0.5, values.shape[1] - 0.5, -0.5))
        if ylabel == "memory row":  # label the shown rows with their memory row numbers (the span may wrap)
            ticks = list(range(0, len(rows), max(1, len(rows) // 6)))
            axis.set_yticks(ticks, [str(int(rows[t])) for t in ticks])
        axis.set_ylabel(ylabel)
        axis.set_title(name, fontsize=9, loc="left")
    axes[-1].set_xlabel("time step")
    figure.suptitle(title)
    return _save(figure, path)


def focused_rows(*weightings: torch.Tensor, threshold: float = 0.2, margin: int = 2) -> torch.Tensor:
    """Memory rows to show, in order: the shortest circular span holding every row with more than
    `threshold` weight at some step, plus a margin. weightings: (T, N) each -> (rows shown,)."""
    focused = torch.cat(weightings, dim=0).amax(dim=0) > threshold  # (N,)
    rows = focused.numel()
    hits = focused.nonzero().flatten().tolist()
    if not hits:
        return torch.arange(rows)
    gaps = [((hits[(i + 1) % len(hits)] - hit) % rows or rows, i) for i, hit in enumerate(hits)]
    _, widest = max(gaps)  # the span starts after the widest run of unfocused rows
    first, last = hits[(widest + 1) % len(hits)], hits[widest]
    length = (last - first) % rows + 1 + 2 * margin
    if length >= rows:
        return torch.arange(rows)
    return (first - margin + torch.arange(length)) % rows


def plot_runs(paths: Sequence[str | os.PathLike], prefix: str | os.PathLike, *, sizes: Sequence[int],
              repeats: int | None = None, sequences: int = 128, episode_size: int | None = None,
              device: str = "cpu", memory_rows: int | None = None) -> dict[str, Any]:
    """The three pictures of NTM runs of one task (e.g. several seeds, or NTMs beside LSTM baselines):
    PREFIX-learning.png, PREFIX-generalisation.png and PREFIX-episode.png (the first NTM run; none when
    every run is an LSTM baseline). Returns the files and the generalisation scores (label -> SizeScores).
    memory_rows: test the NTMs with that many memory rows (`NTMSequenceModel.with_memory_rows`; the baselines
    have no memory), as `memqa evaluate --memory-size`."""
    from memqa.models.ntm import NTMSequenceModel
    from memqa.ntm_evaluate import episode, load_ntm, score_sizes, with_test_memory

    loaded = [(Path(path), *load_ntm(path, device)) for path in paths]
    tasks = {task.name for _, _, task, _ in loaded}
    if len(tasks) != 1:
        raise ConfigError(f"plot runs of one task at a time; these are of {', '.join(sorted(tasks))}")
    if memory_rows is not None:
        if not any(isinstance(model, NTMSequenceModel) for _, model, _, _ in loaded):
            raise ConfigError("--memory-size: these runs are LSTM baselines, which have no memory")
        loaded = [(path, with_test_memory(model, memory_rows, path) if isinstance(model, NTMSequenceModel) else model,
                   task, info) for path, model, task, info in loaded]
    task = loaded[0][2]
    mixed = len({model.kind for _, model, _, _ in loaded}) > 1  # NTMs beside baselines: say which is which
    labels = [(f"{model.label} " if mixed else "") + f"seed {info['seed']}"
              if len({(m.kind, i['seed']) for _, m, _, i in loaded}) == len(loaded) else path.name
              for path, model, _, info in loaded]
    prefix = Path(prefix)
    scores = {label: score_sizes(model, task, sizes, repeats=repeats, sequences=sequences, device=device)
              for label, (_, model, _, _) in zip(labels, loaded)}
    name = task.name + (f", {repeats} repeats" if repeats else "") + (f", {memory_rows} rows" if memory_rows else "")
    what = " and ".join(sorted({model.label for _, model, _, _ in loaded}, reverse=True))  # "NTM and LSTM baseline"
    files = [
        plot_learning_curves({label: info["curve"] for label, (*_, info) in zip(labels, loaded)},
                             f"{prefix}-learning.png", f"{what} {task.name}: learning curves"),
        plot_generalisation(scores, f"{prefix}-generalisation.png", size_name=task.size_name,
                            title=f"{what} {name}: generalisation", trained_up_to=task.training_sizes[1]),
    ]
    ntms = [(label, model) for label, (_, model, _, _) in zip(labels, loaded) if isinstance(model, NTMSequenceModel)]
    if not ntms:
        return {"files": files, "scores": scores, "task": task}
    (label, ntm), size = ntms[0], episode_size or task.training_sizes[1]
    batch, trace = episode(ntm, task, size, repeats=repeats, device=device)
    writes, reads = trace.write_weightings[0], trace.read_weightings[0]  # (T, Hw, N), (T, Hr, N)
    write_head, read_head = most_focused_head(writes), most_focused_head(reads)
    files.append(plot_episode(batch.inputs[0], batch.targets[0], trace.output_logits[0], writes[:, write_head],
                              reads[:, read_head], f"{prefix}-episode.png",
                              f"NTM {name}, {task.size_name} {size} ({label})", heads=(write_head, read_head)))
    if task.name == "priority-sort":
        files.append(plot_priority_writes(batch.inputs[0, :size, task.bits], writes[:size, write_head],
                                          f"{prefix}-writes.png", f"NTM priority sort: where each vector is written "
                                          f"(write head {write_head + 1}, {label})"))
    return {"files": files, "scores": scores, "task": task}


def most_focused_head(weightings: torch.Tensor) -> int:
    """The head whose weighting is sharpest on average. weightings: (T, H, N)."""
    return int(weightings.amax(dim=-1).mean(dim=0).argmax())


def plot_priority_writes(priority: torch.Tensor, write_weightings: torch.Tensor, path: str | os.PathLike,
                         title: str) -> Path:
    """The paper's Figure 17 idea: the row each input vector is written to against its priority.
    priority: (T_in,); write_weightings: (T_in, N), one head while the vectors come in."""
    plt = _pyplot()
    rows = write_weightings.shape[1]
    angle = torch.arange(rows) * (2 * torch.pi / rows)  # circular mean: the tape wraps around
    centre = torch.atan2(write_weightings @ angle.sin(), write_weightings @ angle.cos()) % (2 * torch.pi)
    position = centre * rows / (2 * torch.pi)  # (T_in,) in rows
    figure, axis = plt.subplots(figsize=(5.5, 4))
    axis.scatter(priority.cpu(), position.cpu(), c=write_weightings.amax(dim=1).cpu(), cmap="viridis", vmin=0, vmax=1)
    axis.set(xlabel="priority of the input vector", ylabel="write location (memory row, weighted mean)", title=title)
    axis.grid(alpha=0.3)
    figure.colorbar(axis.collections[0], ax=axis, label="largest write weight")
    return _save(figure, path)
