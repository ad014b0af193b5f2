"""The NTM cell and sequence model (memqa/nn/ntm.py, memqa/models/ntm.py): shapes for any number
of heads, both controllers, finite gradients at the extremes, overfitting, seeding."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from memqa.config import NTMConfig
from memqa.errors import ConfigError
from memqa.models.ntm import GravesRMSProp, NTMSequenceModel
from memqa.nn.ntm import INITIAL_FOCUS, NTMCell, NTMState
from memqa.tasks.algorithmic import CopyTask, sequence_scores

TINY_TASK = CopyTask(bits=4, min_length=1, max_length=3)


def tiny_config(**changes) -> NTMConfig:
    base = NTMConfig(input_size=TINY_TASK.input_size, output_size=TINY_TASK.output_size, memory_rows=8,
                     memory_width=6, controller_size=32)
    return dataclasses.replace(base, **changes)


def tiny_batch(batch_size: int = 6, size: int = 3, seed: int = 0):
    return TINY_TASK.sample(batch_size, torch.Generator().manual_seed(seed), size=size)


def train_a_little(model: NTMSequenceModel, updates: int = 3) -> None:
    optimizer = model.make_optimizer(1e-2)
    for seed in range(updates):
        optimizer.zero_grad()
        batch = tiny_batch(seed=seed)
        model.loss(batch, model(batch)).backward()
        optimizer.step()


@pytest.mark.parametrize("controller, layers, reads, writes", [
    ("lstm", 1, 1, 1), ("lstm", 2, 2, 3), ("feedforward", 1, 1, 1), ("feedforward", 2, 3, 2)])
def test_step_shapes(controller, layers, reads, writes):
    config = tiny_config(controller=controller, controller_layers=layers, read_heads=reads, write_heads=writes)
    cell = NTMCell(config)
    x = torch.randn(5, config.input_size)
    state = cell.initial_state(x)
    assert isinstance(state, NTMState)
    output, state = cell.step(x, state)
    assert output.shape == (5, config.output_size)
    assert state.memory.shape == (5, 8, 6)
    assert state.read_vectors.shape == (5, reads, 6)
    assert state.read_weightings.shape == (5, reads, 8) and state.write_weightings.shape == (5, writes, 8)
    assert state.controller_hidden.shape == state.controller_cell.shape == (layers, 5, 32)
    assert torch.allclose(state.read_weightings.sum(-1), torch.ones(5, reads))


def test_initial_state_is_learned_and_focused():
    cell = NTMCell(tiny_config())
    state = cell.initial_state(torch.zeros(2, TINY_TASK.input_size))
    assert state.read_weightings[:, 0, 0].tolist() == pytest.approx([INITIAL_FOCUS] * 2)
    assert state.memory.eq(cell.config.memory_init).all()  # Collier & Beel 2018: a small constant
    learned = dict(cell.named_parameters())
    assert {"initial_memory", "initial_read_vectors", "initial_weighting_logits", "initial_hidden",
            "initial_cell"} <= set(learned)


@pytest.mark.parametrize("mode, learned_shape", [("rows", (8, 6)), ("shared", (1, 6)), ("constant", None)])
def test_initial_memory_modes(mode, learned_shape):
    # "rows" learns each row; "shared" one row for every position (rows stay equal after an update);
    # "constant" learns none and the memory starts at memory_init every time
    model = NTMSequenceModel(tiny_config(initial_memory=mode))
    cell = model.cell
    learned = dict(cell.named_parameters())
    assert (learned["initial_memory"].shape if "initial_memory" in learned else None) == learned_shape
    train_a_little(model)
    memory = cell.initial_state(torch.zeros(2, TINY_TASK.input_size)).memory  # (B, N, M)
    assert memory.shape == (2, 8, 6)
    rows_equal = bool(memory[0].eq(memory[0, :1]).all())
    assert rows_equal == (mode != "rows")
    assert memory.eq(cell.config.memory_init).all() == (mode == "constant")
    assert "initial_memory" in cell.state_dict()  # saved whatever the mode, so a reader reloads exactly


@pytest.mark.parametrize("mode", ["rows", "shared", "constant"])
def test_with_memory_rows_inserts_rows_in_the_middle(mode):
    # A trained NTM tested with a larger memory: rows 0-3 and 4-7 keep their learned start, the 4 new rows
    # between them take the middle half's mean memory and the median weighting logit; nothing else changes
    torch.manual_seed(0)
    model = NTMSequenceModel(tiny_config(initial_memory=mode))
    train_a_little(model)
    larger = model.with_memory_rows(12)
    assert larger.config.memory_rows == 12 and model.config.memory_rows == 8  # a new model; the old one is kept
    x = torch.zeros(2, TINY_TASK.input_size)
    old, new = model.cell.initial_state(x).memory[0], larger.cell.initial_state(x).memory[0]  # (N, M)
    assert new.shape == (12, 6)
    assert torch.equal(new[:4], old[:4]) and torch.equal(new[8:], old[4:])
    assert torch.allclose(new[4:8], old[2:6].mean(dim=0).expand(4, -1))
    old_logits, new_logits = model.cell.initial_weighting_logits, larger.cell.initial_weighting_logits  # (H, N)
    assert torch.equal(new_logits[:, :4], old_logits[:, :4]) and torch.equal(new_logits[:, 8:], old_logits[:, 4:])
    assert torch.equal(new_logits[:, 4:8], old_logits[:, 1:].median(dim=1, keepdim=True).values.expand(-1, 4))
    others = {name: value for name, value in model.state_dict().items() if "initial_memory" not in name
              and "initial_weighting" not in name}
    assert all(torch.equal(value, larger.state_dict()[name]) for name, value in others.items())
    batch = tiny_batch(size=3)
    assert larger(batch).logits.isfinite().all()
    assert torch.equal(model.with_memory_rows(8)(batch).logits, model(batch).logits)
    with pytest.raises(ConfigError, match="trained with 8"):
        model.with_memory_rows(6)


def test_initial_state_follows_the_input_dtype():
    cell = NTMCell(tiny_config()).double()
    state = cell.initial_state(torch.zeros(2, TINY_TASK.input_size, dtype=torch.float64))
    assert all(t.dtype == torch.float64 for t in state)


def test_state_is_passed_not_kept():
    """Stepping twice from the same state gives the same result: nothing is hidden on the module."""
    torch.manual_seed(0)
    cell = NTMCell(tiny_config())
    x = torch.randn(3, TINY_TASK.input_size)
    state = cell.initial_state(x)
    first, _ = cell.step(x, state)
    cell.step(x, cell.step(x, state)[1])
    again, _ = cell.step(x, state)
    assert torch.equal(first, again)


@pytest.mark.parametrize("scale", [1e4, -1e4])
def test_finite_gradients_with_extreme_head_parameters_and_zero_memory(scale):
    torch.manual_seed(0)
    model = NTMSequenceModel(tiny_config(memory_init=0.0, read_heads=2, write_heads=2))
    with torch.no_grad():
        model.cell.head_layer.weight.fill_(scale)
        model.cell.head_layer.bias.fill_(scale)
    batch = tiny_batch()
    output = model(batch)
    model.loss(batch, output).backward()
    assert torch.isfinite(output.logits).all()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name


def test_overfits_a_few_short_copy_sequences():
    """Four copy sequences of length 3 are learned exactly (seeds 0-3 need 36-64 steps)."""
    torch.manual_seed(0)
    assert_overfits(NTMSequenceModel(tiny_config()), tiny_batch(batch_size=4), steps=300)


def assert_overfits(model, batch, steps: int) -> None:
    """Training on `batch` alone (lr 3e-3) gets every bit of it right within `steps` steps."""
    optimizer = model.make_optimizer(3e-3)
    first_loss = model.loss(batch, model(batch)).item()
    for _ in range(steps):
        output = model(batch)
        if model.count_correct(batch, output) == batch.inputs.shape[0]:
            break
        optimizer.zero_grad()
        model.loss(batch, output).backward()
        model.clip_gradients(None)
        optimizer.step()
    assert int(sequence_scores(output.logits, batch.targets).bit_errors.sum()) == 0
    assert model.loss(batch, output).item() < first_loss / 4


def test_same_seed_same_model_and_outputs():
    outputs = []
    for seed in (1, 1, 2):
        torch.manual_seed(seed)
        outputs.append(NTMSequenceModel(tiny_config())(tiny_batch()).logits)
    assert torch.equal(outputs[0], outputs[1])
    assert not torch.allclose(outputs[0], outputs[2])


def test_trace_records_every_step():
    model = NTMSequenceModel(tiny_config(read_heads=2))
    batch = tiny_batch(2, size=3)
    output = model(batch, trace=True)
    steps = batch.inputs.shape[1]
    assert output.trace.output_logits.shape == (2, steps, TINY_TASK.output_size)
    assert output.trace.read_weightings.shape == (2, steps, 2, 8)
    assert output.trace.write_weightings.shape == (2, steps, 1, 8)
    assert torch.equal(output.trace.output_logits[:, -3:], output.logits)


def test_gradient_clipping_is_element_wise():
    model = NTMSequenceModel(tiny_config())
    for parameter in model.parameters():
        parameter.grad = torch.full_like(parameter, 50.0)
    model.cell.output_layer.bias.grad = torch.tensor([-50.0, 3.0, 0.5, -2.0])
    model.clip_gradients(None)
    assert model.cell.output_layer.bias.grad.tolist() == [-10.0, 3.0, 0.5, -2.0]
    assert all(p.grad.abs().max() <= 10 for p in model.parameters())


def test_config_rejects_bad_values():
    with pytest.raises(ConfigError, match="controller"):
        tiny_config(controller="gru")
    with pytest.raises(ConfigError, match="read_heads"):
        tiny_config(read_heads=0)
    with pytest.raises(ConfigError, match="shift_range"):
        tiny_config(shift_range=8)
    with pytest.raises(ConfigError, match="optimizer"):
        tiny_config(optimizer="sgd")
    with pytest.raises(ConfigError, match="initial_memory"):
        tiny_config(initial_memory="random")
    with pytest.raises(ConfigError, match="state_noise"):
        tiny_config(state_noise=-0.1)


@pytest.mark.parametrize("controller, layers", [("lstm", 1), ("lstm", 2), ("feedforward", 1)])
def test_state_noise_perturbs_training_steps_only(controller, layers):
    # Evaluation reads the same weights as a noiseless cell; a training step adds fresh noise each call,
    # of about the set standard deviation on every controller unit of every layer
    torch.manual_seed(0)
    noisy = NTMSequenceModel(tiny_config(controller=controller, controller_layers=layers, state_noise=0.5))
    quiet = NTMSequenceModel(tiny_config(controller=controller, controller_layers=layers))
    quiet.load_state_dict(noisy.state_dict())
    batch = tiny_batch()
    noisy.eval(), quiet.eval()
    assert torch.equal(noisy(batch).logits, quiet(batch).logits)
    noisy.train(), quiet.train()
    assert torch.equal(quiet(batch).logits, quiet(batch).logits)
    first, second = noisy(batch).logits, noisy(batch).logits
    assert not torch.equal(first, second) and not torch.equal(first, quiet(batch).logits)
    x = torch.zeros(4096, TINY_TASK.input_size)
    state = noisy.cell.initial_state(x)
    controller_input = torch.cat([x, state.read_vectors.reshape(4096, -1)], dim=1)
    features, hidden, _ = noisy.cell.controller(controller_input, state.controller_hidden, state.controller_cell)
    noisy.eval()
    clean, clean_hidden, _ = noisy.cell.controller(controller_input, state.controller_hidden, state.controller_cell)
    assert (features - clean).std().item() == pytest.approx(0.5, rel=0.05)
    if controller == "lstm":
        assert torch.equal(hidden[-1], features)  # the noisy output is also what the next step reads
        assert not torch.equal(hidden, clean_hidden)


@pytest.mark.parametrize("name, kind", [("rmsprop", torch.optim.RMSprop), ("adam", torch.optim.Adam)])
def test_the_optimizer_setting_chooses_the_optimizer(name, kind):
    # "adam" is Collier & Beel 2018's choice; the rate and weight decay reach it, RMSProp's momentum does not
    optimizer = NTMSequenceModel(tiny_config(optimizer=name)).make_optimizer(2e-3, weight_decay=0.01)
    assert type(optimizer) is kind
    (group,) = optimizer.param_groups
    assert (group["lr"], group["weight_decay"]) == (2e-3, 0.01)
    assert group.get("momentum", 0.9) == 0.9 and ("betas" in group) == (name == "adam")


def test_graves_rmsprop_follows_eqs_38_to_41():
    # Graves 2013 eqs. 38-41 by hand for one weight, gradients 2 then -1:
    # n = .95 n + .05 ε², g = .95 g + .05 ε, Δ = .9 Δ - lr ε / sqrt(n - g² + 1e-4), w += Δ
    weight = torch.nn.Parameter(torch.tensor([1.0]))
    optimizer = GravesRMSProp([weight], lr=0.1)
    n, g, delta, expected = 0.0, 0.0, 0.0, 1.0
    for grad in (2.0, -1.0):
        weight.grad = torch.tensor([grad])
        optimizer.step()
        n, g = 0.95 * n + 0.05 * grad**2, 0.95 * g + 0.05 * grad
        delta = 0.9 * delta - 0.1 * grad / math.sqrt(n - g**2 + 1e-4)
        expected += delta
        assert weight.item() == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(1 - 0.2 / math.sqrt(0.1901) * 1.9 + 0.1 / math.sqrt(0.237975 + 1e-4))
    # centred: a constant gradient has no variance, so the step grows to lr·ε/sqrt(1e-4), not torch's lr
    weight = torch.nn.Parameter(torch.tensor([0.0]))
    optimizer = GravesRMSProp([weight], lr=1e-3, momentum=0.0)
    for _ in range(200):
        weight.grad = torch.tensor([1.0])
        before = weight.item()
        optimizer.step()
    assert before - weight.item() == pytest.approx(1e-3 / math.sqrt(0.95**200 * (1 - 0.95**200) + 1e-4), rel=1e-3)  # float32 n - g²


def test_graves_rmsprop_state_round_trips():
    torch.manual_seed(0)
    model = NTMSequenceModel(tiny_config(optimizer="graves"))
    optimizer = model.make_optimizer(1e-3)
    assert isinstance(optimizer, GravesRMSProp)
    grads = [[torch.randn_like(p) for p in model.parameters()] for _ in range(3)]

    def step(opt, params, grad):
        for p, g in zip(params, grad):
            p.grad = g.clone()
        opt.step()

    copy = NTMSequenceModel(tiny_config(optimizer="graves"))
    copy.load_state_dict(model.state_dict())
    for grad in grads[:2]:
        step(optimizer, list(model.parameters()), grad)
    saved = optimizer.state_dict()
    restored = copy.make_optimizer(5.0)  # the saved rate wins
    copy.load_state_dict(model.state_dict())
    restored.load_state_dict(saved)
    assert restored.param_groups[0]["lr"] == 1e-3
    step(optimizer, list(model.parameters()), grads[2])
    step(restored, list(copy.parameters()), grads[2])
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), copy.parameters()))
    with pytest.raises(ValueError, match="not GravesRMSProp"):
        restored.load_state_dict(torch.optim.RMSprop(model.parameters()).state_dict())
