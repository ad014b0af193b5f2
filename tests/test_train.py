"""memqa.train: overfitting the tiny fixture, seeds, the best epoch, Ctrl-C and divergence."""

from __future__ import annotations

import copy
import dataclasses
import math
import warnings

import pytest
import torch
from helpers import OVERFIT_TRAIN_CONFIG, TINY_TRAIN_QUESTIONS, small_memn2n_config

from memqa.config import TrainConfig
from memqa.data.batching import MemqaWarning, encode_examples, split_train_valid, story_folds
from memqa.errors import ConfigError, DataError
from memqa.models.memn2n import MemN2N
from memqa import train as train_module
from memqa.train import evaluate_set, fit, train_model


@pytest.fixture(scope="module")
def tiny_set(tiny_examples, tiny_vocab):
    return encode_examples(tiny_examples, tiny_vocab, memory_size=10)


def new_model(vocab, seed=0, **changes):
    torch.manual_seed(seed)
    return MemN2N(small_memn2n_config(**changes), vocab)


def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_fixture_size(tiny_examples):
    assert len(tiny_examples) == TINY_TRAIN_QUESTIONS


@pytest.mark.parametrize("tying", ["adjacent", "layerwise"])
def test_overfits_the_tiny_fixture(tiny_vocab, tiny_set, tying):
    net = new_model(tiny_vocab, weight_tying=tying)
    before = evaluate_set(net, tiny_set)[1]
    result = train_model(net, tiny_set, tiny_set, TrainConfig(**OVERFIT_TRAIN_CONFIG), vocab=tiny_vocab)
    loss, accuracy = evaluate_set(result.model, tiny_set)
    assert before < 0.5
    assert accuracy == 1.0
    assert result.stopped is None
    assert result.best.valid_accuracy == 1.0 and loss == pytest.approx(result.best.valid_loss)
    assert not result.model.training and result.model.softmax_attention


def test_history_follows_the_phases(tiny_vocab, tiny_set):
    config = TrainConfig(epochs=5, batch_size=6, learning_rate=0.04, decay_every=2, decay_factor=0.5,
                         linear_start_epochs=2, linear_start_learning_rate=0.03)
    net = new_model(tiny_vocab)
    softmax_on = []
    result = train_model(net, tiny_set, tiny_set, config, vocab=tiny_vocab,
                         on_epoch=lambda record, total: softmax_on.append((record.epoch, total, net.softmax_attention)))
    assert [(r.epoch, r.phase) for r in result.history] == [(1, "linear start"), (2, "linear start")] + [
        (e, "train") for e in range(3, 8)]
    # the main phase starts at the linear-start rate (the authors' config_babi.m) and halves every 2 epochs
    assert [r.learning_rate for r in result.history] == pytest.approx([0.03, 0.03, 0.03, 0.03, 0.015, 0.015, 0.0075])
    assert softmax_on == [(1, 7, False), (2, 7, False)] + [(e, 7, True) for e in range(3, 8)]
    assert result.best_epoch > 2  # linear start trains a different model form; its epochs are never kept


def test_fit_is_seeded(tiny_examples, tiny_set):
    config = TrainConfig(epochs=3, linear_start_epochs=1, batch_size=4)
    model_config = small_memn2n_config()
    logits = []
    for seed in (1, 1, 2):
        result = fit("memn2n", model_config, dataclasses.replace(config, seed=seed), tiny_examples)
        assert result.seed == seed
        logits.append(result.model(tiny_set.batch(slice(None))).logits)
    assert torch.equal(logits[0], logits[1])
    assert not torch.allclose(logits[0], logits[2])


def test_fit_trains_and_validates_on_a_given_split(tiny_examples, tiny_set):
    config = TrainConfig(epochs=3, linear_start_epochs=1, batch_size=4, seed=1)
    seeded = fit("memn2n", small_memn2n_config(), config, tiny_examples)
    given = fit("memn2n", small_memn2n_config(), config, tiny_examples,
                split=split_train_valid(tiny_examples, config.valid_fraction, config.seed))
    assert torch.equal(seeded.model(tiny_set.batch(slice(None))).logits, given.model(tiny_set.batch(slice(None))).logits)
    assert [r.valid_accuracy for r in given.history] == [r.valid_accuracy for r in seeded.history]
    fold = story_folds(tiny_examples, 2, seed=0)[1]
    other = fit("memn2n", small_memn2n_config(), config, tiny_examples, split=fold)
    assert not torch.equal(other.model(tiny_set.batch(slice(None))).logits, seeded.model(tiny_set.batch(slice(None))).logits)


def test_best_validation_epoch_is_kept(tiny_vocab, tiny_set):
    """From epoch 30 on the callback zeroes the weights (which then stay zero: every gradient is zero),
    so the last epochs are worse and the kept weights must be those of an earlier, best epoch."""
    net = new_model(tiny_vocab, linear_start=False)
    snapshots = {}

    def on_epoch(record, total):
        snapshots[record.epoch] = copy.deepcopy(net.state_dict())
        if record.epoch >= 30:
            with torch.no_grad():
                for parameter in net.parameters():
                    parameter.zero_()

    config = TrainConfig(**{**OVERFIT_TRAIN_CONFIG, "epochs": 34, "linear_start_epochs": 0})
    result = train_model(net, tiny_set, tiny_set, config, vocab=tiny_vocab, on_epoch=on_epoch)
    assert len(result.history) == 34 and result.stopped is None
    keys = [(r.valid_accuracy, -r.valid_loss) for r in result.history]
    assert result.best_epoch == 1 + keys.index(max(keys))
    assert result.best_epoch <= 30 < len(result.history)
    assert result.history[-1].valid_accuracy < result.best.valid_accuracy
    assert same_state(result.model.state_dict(), snapshots[result.best_epoch])
    loss, accuracy = evaluate_set(result.model, tiny_set)
    assert (accuracy, loss) == pytest.approx((result.best.valid_accuracy, result.best.valid_loss))


def test_ctrl_c_keeps_the_best_weights(tiny_examples):
    seen = []

    def on_epoch(repeat, record, total):
        seen.append(record.epoch)
        if record.epoch == 4:
            raise KeyboardInterrupt

    result = fit("memn2n", small_memn2n_config(linear_start=False), TrainConfig(epochs=50, batch_size=4, repeats=3),
                 tiny_examples, on_epoch=on_epoch)
    assert result.stopped == "interrupted"
    assert seen == [1, 2, 3, 4]  # no further epochs, and no further repeats
    assert len(result.history) == 4
    assert result.best_epoch == 1 + [(r.valid_accuracy, -r.valid_loss) for r in result.history].index(
        max((r.valid_accuracy, -r.valid_loss) for r in result.history))
    assert not result.model.training


def test_ctrl_c_restores_the_best_epoch_weights(tiny_vocab, tiny_set):
    net = new_model(tiny_vocab, linear_start=False)
    snapshots = {}

    def on_epoch(record, total):
        snapshots[record.epoch] = copy.deepcopy(net.state_dict())
        if record.epoch == 5:
            raise KeyboardInterrupt

    result = train_model(net, tiny_set, tiny_set, TrainConfig(epochs=40, batch_size=4, learning_rate=0.05),
                         vocab=tiny_vocab, on_epoch=on_epoch)
    assert result.stopped == "interrupted" and len(result.history) == 5
    assert same_state(result.model.state_dict(), snapshots[result.best_epoch])


def test_huge_learning_rate_diverges(tiny_examples, tiny_set):
    config = TrainConfig(epochs=5, learning_rate=1e30, max_grad_norm=1e30)
    result = fit("memn2n", small_memn2n_config(linear_start=False), config, tiny_examples)
    assert result.stopped == "diverged"
    assert len(result.history) < 5
    # whatever was kept is usable: finite weights and finite answers
    assert all(torch.isfinite(p).all() for p in result.model.parameters())
    assert torch.isfinite(result.model(tiny_set.batch(slice(None))).logits).all()


def test_weight_decay_shrinks_the_weights(tiny_vocab, tiny_set):
    # The same seeded run with and without an L2 penalty: the penalty takes effect in training,
    # and the weights it leaves are smaller.
    def squared_norm(weight_decay: float) -> float:
        net = new_model(tiny_vocab, linear_start=False)
        config = TrainConfig(epochs=4, batch_size=4, learning_rate=0.05, linear_start_epochs=0, weight_decay=weight_decay)
        result = train_model(net, tiny_set, tiny_set, config, vocab=tiny_vocab)
        assert len(result.history) == 4
        return float(sum(p.detach().square().sum() for p in result.model.parameters()))

    assert squared_norm(1.0) < 0.9 * squared_norm(0.0)


def test_divergence_keeps_the_best_epoch_before_it(tiny_vocab, tiny_set):
    # The rate grows 1e12-fold every 2 epochs: epochs 1-2 train, epoch 3 blows up.
    net = new_model(tiny_vocab, linear_start=False)
    snapshots = {}
    config = TrainConfig(epochs=6, batch_size=4, learning_rate=0.05, decay_every=2, decay_factor=1e12,
                         max_grad_norm=1e30)
    result = train_model(net, tiny_set, tiny_set, config, vocab=tiny_vocab,
                         on_epoch=lambda record, total: snapshots.update({record.epoch: copy.deepcopy(net.state_dict())}))
    assert result.stopped == "diverged"
    assert len(result.history) == 2 and result.best_epoch in (1, 2)
    assert same_state(result.model.state_dict(), snapshots[result.best_epoch])
    assert torch.isfinite(result.model(tiny_set.batch(slice(None))).logits).all()


def test_fit_warns_once_about_long_stories(tiny_examples):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit("memn2n", small_memn2n_config(encoder__memory_size=3), TrainConfig(epochs=1, linear_start_epochs=0),
            tiny_examples)
    ours = [w for w in caught if issubclass(w.category, MemqaWarning)]
    assert len(ours) == 1
    assert "longer than the memory (3 sentences)" in str(ours[0].message)


def test_fit_does_not_warn_when_stories_fit(tiny_examples):
    with warnings.catch_warnings():
        warnings.simplefilter("error", MemqaWarning)
        fit("memn2n", small_memn2n_config(), TrainConfig(epochs=1, linear_start_epochs=0), tiny_examples)


def test_fit_needs_two_questions(tiny_examples):
    with pytest.raises(DataError, match="at least 2 questions"):
        fit("memn2n", small_memn2n_config(), TrainConfig(epochs=1), tiny_examples[:1])


def test_repeats_return_the_best_run(tiny_examples):
    done = []
    result = fit("memn2n", small_memn2n_config(), TrainConfig(epochs=2, linear_start_epochs=1, repeats=3, seed=10),
                 tiny_examples, on_repeat_done=lambda repeat, r: done.append((repeat, r)))
    assert [repeat for repeat, _ in done] == [0, 1, 2]
    assert [r.seed for _, r in done] == [10, 11, 12]
    assert result in [r for _, r in done]
    assert result.selection_key == max(r.selection_key for _, r in done)


def test_without_validation_every_question_is_trained_on_and_the_last_epoch_kept(tiny_examples, monkeypatch):
    """valid_fraction 0 (a refit): all questions train, each run keeps its last epoch's weights, and the
    run with the lowest training error is kept (Sukhbaatar et al. 2015 §4.2)."""
    config = TrainConfig(epochs=4, linear_start_epochs=1, batch_size=4, repeats=3, seed=5, valid_fraction=0.0)
    encoded = []
    real_encode = train_module.encode_examples
    monkeypatch.setattr(train_module, "encode_examples", lambda examples, *a: encoded.append(list(examples)) or real_encode(examples, *a))
    done = []
    result = fit("memn2n", small_memn2n_config(), config, tiny_examples,
                 on_repeat_done=lambda repeat, r: done.append(copy.deepcopy(r)))
    for run in done:
        assert run.best_epoch == 5 == len(run.history) and not run.validated
        assert all(math.isnan(r.valid_accuracy) and math.isnan(r.valid_loss) for r in run.history)
    assert encoded == [list(tiny_examples)]  # one set, every question: no validation set is made
    keys = [(r.best.train_accuracy, -r.best.train_loss) for r in done]
    assert result.seed == done[keys.index(max(keys))].seed
    assert len(set(keys)) > 1  # the seeds differ, so the choice was a real one


def test_without_validation_the_final_weights_are_kept(tiny_vocab, tiny_set):
    net = new_model(tiny_vocab, linear_start=False)
    snapshots = {}
    config = TrainConfig(epochs=6, batch_size=4, linear_start_epochs=0, valid_fraction=0.0)
    result = train_model(net, tiny_set, None, config, vocab=tiny_vocab,
                         on_epoch=lambda record, total: snapshots.update({record.epoch: copy.deepcopy(net.state_dict())}))
    assert result.best_epoch == 6 and same_state(result.model.state_dict(), snapshots[6])
    assert not same_state(snapshots[5], snapshots[6])


@pytest.mark.parametrize("fraction", [-0.1, 1.0])
def test_valid_fraction_must_be_below_one(fraction):
    with pytest.raises(ConfigError, match=r"valid_fraction must be in \[0, 1\)"):
        TrainConfig(valid_fraction=fraction)


@pytest.mark.parametrize("weight_decay", [0.0, 0.3])
def test_plain_sgd_is_torch_sgd_without_torch_optim(weight_decay):
    # The paper's SGD without torch.optim (whose first use imports torch._dynamo): the same weights
    # after the same steps, and torch.optim.SGD's state_dict, so saved training states load either way.
    from memqa.models.base import PlainSGD

    torch.manual_seed(0)
    ours, theirs = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    theirs.load_state_dict(ours.state_dict())
    plain = PlainSGD(ours.parameters(), lr=0.05, weight_decay=weight_decay)
    reference = torch.optim.SGD(theirs.parameters(), lr=0.05, weight_decay=weight_decay)
    for _ in range(3):
        x = torch.randn(5, 4)
        for model, optimizer in ((ours, plain), (theirs, reference)):
            optimizer.zero_grad(set_to_none=True)
            model(x).square().sum().backward()
            optimizer.step()
    assert all(torch.equal(a, b) for a, b in zip(ours.parameters(), theirs.parameters()))
    assert all(p.grad is not None for p in ours.parameters())
    plain.zero_grad()
    assert all(p.grad is None for p in ours.parameters())
    assert plain.state_dict() == reference.state_dict()
    reference.param_groups[0]["lr"] = 0.0125
    plain.load_state_dict(reference.state_dict())
    assert plain.param_groups[0]["lr"] == 0.0125
    with pytest.raises(ValueError):
        plain.load_state_dict(torch.optim.SGD(torch.nn.Linear(2, 2, bias=False).parameters(), lr=0.1).state_dict())


@pytest.mark.parametrize("max_norm", [0.5, 40.0])
def test_clip_grad_norm_is_torchs_number_for_number(max_norm):
    from memqa.models.base import clip_grad_norm

    torch.manual_seed(0)
    ours = [torch.randn(shape, requires_grad=True) for shape in [(5, 3), (7,), (2, 2, 2)]]
    theirs = [p.detach().clone().requires_grad_() for p in ours]
    for mine, other in zip(ours, theirs):
        mine.grad = torch.randn_like(mine) * 3
        other.grad = mine.grad.clone()
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, foreach=True)
    assert torch.equal(clip_grad_norm(ours, max_norm), expected)
    assert all(torch.equal(mine.grad, other.grad) for mine, other in zip(ours, theirs))
    assert (expected > max_norm) == (max_norm == 0.5)  # one case clips, the other does not
