"""The algorithmic tasks (memqa/tasks/algorithmic.py): shapes, content, seeding and the metrics."""

from __future__ import annotations

import math

import pytest
import torch

from memqa.errors import ConfigError
from memqa.tasks.algorithmic import (TASKS, AssociativeRecallTask, CopyTask, FixedSequences, PrioritySortTask,
                                     RepeatCopyTask, TaskStream, make_task, sequence_loss, sequence_scores,
                                     task_from_dict)


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_copy_batch():
    batch = CopyTask().sample(4, generator(), size=5)
    assert batch.inputs.shape == (4, 11, 9) and batch.targets.shape == (4, 5, 8)
    assert torch.equal(batch.inputs[:, :5, :8], batch.targets)  # the answer is the input
    assert batch.inputs[:, 5, 8].eq(1).all() and batch.inputs[:, :5, 8].eq(0).all()  # delimiter
    assert batch.inputs[:, 6:].eq(0).all()  # no input while answering


def test_repeat_copy_batch():
    task = RepeatCopyTask()
    batch = task.sample(3, generator(), size=4, repeats=3)
    assert batch.inputs.shape == (3, 4 + 1 + 13, 10) and batch.targets.shape == (3, 13, 9)
    sequence = batch.inputs[:, :4, :8]
    assert torch.equal(batch.targets[:, :12, :8], torch.cat([sequence] * 3, dim=1))
    assert batch.targets[:, -1].tolist() == [[0.0] * 8 + [1.0]] * 3  # end marker alone on the last step
    assert batch.inputs[:, 4, 8].eq(1).all()
    assert batch.inputs[0, 4, 9].item() == pytest.approx((3 - 5.5) / math.sqrt(99 / 12))  # mean 0, variance 1 on 1..10


def test_repeat_count_is_normalised_over_the_training_range():
    task = RepeatCopyTask()
    values = torch.tensor([task.normalised_repeats(r) for r in range(1, 11)])
    assert values.mean().item() == pytest.approx(0, abs=1e-6)
    assert values.var(unbiased=False).item() == pytest.approx(1)


def test_associative_recall_batch():
    task = AssociativeRecallTask()
    batch = task.sample(64, generator(), size=4)
    assert batch.inputs.shape == (64, 4 * 4 + 4 + 1 + 3, 8) and batch.targets.shape == (64, 3, 6)
    items = batch.inputs[:, :16].reshape(64, 4, 4, 8)
    assert items[:, :, 0, 6].eq(1).all()  # item delimiters
    query = batch.inputs[:, 17:20, :6]
    assert batch.inputs[:, 16, 7].eq(1).all() and batch.inputs[:, 20, 7].eq(1).all()  # query delimiters
    for b in range(64):
        position = next(i for i in range(4) if torch.equal(items[b, i, 1:, :6], query[b]))
        assert position < 3  # the last item is never asked for: nothing follows it
        assert torch.equal(batch.targets[b], items[b, position + 1, 1:, :6])


def test_priority_sort_batch():
    batch = PrioritySortTask().sample(5, generator())
    assert batch.inputs.shape == (5, 20 + 1 + 16, 10) and batch.targets.shape == (5, 16, 8)
    priority = batch.inputs[:, :20, 8]
    assert priority.abs().le(1).all() and batch.inputs[:, 20, 9].eq(1).all()
    for b in range(5):
        ranked = priority[b].argsort(descending=True)[:16]
        assert torch.equal(batch.targets[b], batch.inputs[b, ranked, :8])
    assert PrioritySortTask().sample(2, generator(), size=10).targets.shape == (2, 8, 8)  # keeps 16/20


@pytest.mark.parametrize("name", sorted(TASKS))
def test_sizes_come_from_the_training_range(name):
    task = make_task(name)
    low, high = task.training_sizes
    widths = set()
    for seed in range(30):
        batch = task.sample(2, generator(seed))
        assert batch.inputs.shape[2] == task.input_size and batch.targets.shape[2] == task.output_size
        widths.add(batch.inputs.shape[1])
    assert len(widths) > 1 or low == high


@pytest.mark.parametrize("name", sorted(TASKS))
def test_generators_are_seeded(name):
    task = make_task(name)
    first, again, other = (task.sample(8, generator(seed)) for seed in (3, 3, 4))
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert any(a.shape != b.shape or not torch.equal(a, b) for a, b in zip(first, other))


@pytest.mark.parametrize("name", sorted(TASKS))
def test_task_round_trips_through_a_dict(name):
    task = make_task(name)
    assert task_from_dict(task.to_dict()) == task


def test_unknown_task_and_bad_sizes():
    with pytest.raises(ConfigError, match="unknown algorithmic task 'sort'"):
        make_task("sort")
    with pytest.raises(ConfigError, match="unknown keys"):
        task_from_dict({"name": "copy", "bits": 8, "min_length": 1, "max_length": 20, "colour": 1})
    with pytest.raises(ConfigError, match="at least 2 items"):
        AssociativeRecallTask().sample(1, generator(), size=1)
    with pytest.raises(ConfigError, match="at least 1"):
        CopyTask().sample(1, generator(), size=0)


def test_metrics_by_hand():
    targets = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 1.0], [0.0, 0.0]]])  # (2, 2, 2)
    logits = torch.tensor([[[5.0, -5.0], [-5.0, 5.0]], [[5.0, -5.0], [5.0, -5.0]]])
    scores = sequence_scores(logits, targets)
    assert scores.bit_errors.tolist() == [0, 2]
    # each bit costs -log2 σ(±5): 4 right bits in sequence 1; 2 right and 2 wrong in sequence 2
    right, wrong = math.log2(1 + math.exp(-5)), math.log2(1 + math.exp(5))
    assert scores.cost_bits.tolist() == pytest.approx([4 * right, 2 * right + 2 * wrong], rel=1e-5)
    assert sequence_loss(logits, targets).item() == pytest.approx(math.log(2) * scores.cost_bits.sum().item(), rel=1e-5)
    # a coin-flip output (logit 0) costs exactly one bit per target bit
    assert sequence_scores(torch.zeros(1, 3, 4), torch.ones(1, 3, 4)).cost_bits.item() == pytest.approx(12)


def test_stream_and_fixed_sets():
    stream = TaskStream(CopyTask(), sequences=10)
    sizes = [batch.inputs.shape[0] for batch in stream.batches(4, generator=generator())]
    assert sizes == [4, 4, 2] and len(stream) == 10
    fixed = FixedSequences.drawn(CopyTask(), batches=3, batch_size=5, seed=1)
    assert len(fixed) == 15
    assert all(torch.equal(a.inputs, b.inputs) for a, b in zip(fixed.batches(), fixed.batches()))
