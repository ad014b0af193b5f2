"""`memqa train --compile`: the NTM's step through torch.compile. It computes what the eager step does (to
rounding), a compiled run is deterministic and resumes bit-identical, and every place it does not apply
refuses it with one line. Compiling takes tens of seconds, so the tiny runs here share what they can."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from helpers import STATE
from test_ntm_cli import SMALL_MEMORY, assert_ok, invoke, tiny_request
from test_ntm_resume import same_weights, stop_at_point, without_seconds

import memqa.nn.ntm as ntm_module
from memqa.errors import ConfigError
from memqa.nn.ntm import NTMCell
from memqa.ntm_evaluate import load_ntm
from memqa.ntm_pipeline import (VALID_BATCH_SIZE, VALID_BATCHES, VALID_SEED, NTMTrainRequest, load_ntm_request,
                                resume_ntm, score_batches, train_ntm)
from memqa.tasks.algorithmic import FixedSequences

# 3 evaluations of 32 sequences: the resumed run below is stopped after the second
SEQUENCES = 96


def compiled_request(out) -> NTMTrainRequest:
    return dataclasses.replace(tiny_request(out, sequences=SEQUENCES), compile=True)


@pytest.fixture(scope="module")
def compiled_run(tmp_path_factory):
    return train_ntm(compiled_request(tmp_path_factory.mktemp("ntm-compile") / "reference"))


def test_the_compiled_step_computes_the_eager_step(tmp_path):
    torch.manual_seed(0)
    config = tiny_request(tmp_path).model_config  # the cell of the runs below
    eager, compiled = NTMCell(config), NTMCell(config)
    compiled.load_state_dict(eager.state_dict())
    compiled.compile_step()
    assert eager.step.__func__ is NTMCell.step and getattr(compiled.step, "__func__", None) is not NTMCell.step
    inputs = torch.rand(8, 6, config.input_size)  # (B, T, I)
    outputs = {}
    for name, cell in (("eager", eager), ("compiled", compiled)):
        state, logits = cell.initial_state(inputs[:, 0]), []
        for t in range(inputs.shape[1]):
            output, state = cell.step(inputs[:, t], state)
            logits.append(output)
        loss = torch.stack(logits, dim=1).square().sum()
        loss.backward()
        outputs[name] = (torch.stack(logits, dim=1), state.memory,
                         {n: p.grad for n, p in cell.named_parameters() if p.grad is not None})
    (logits_a, memory_a, grads_a), (logits_b, memory_b, grads_b) = outputs["eager"], outputs["compiled"]
    torch.testing.assert_close(logits_b, logits_a, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(memory_b, memory_a, rtol=1e-4, atol=1e-5)
    assert grads_a.keys() == grads_b.keys() and grads_a
    for name in grads_a:
        torch.testing.assert_close(grads_b[name], grads_a[name], rtol=1e-3, atol=1e-5)


def test_a_compiled_run_is_saved_as_such_and_repeats_itself(compiled_run, tmp_path):
    again = train_ntm(compiled_request(tmp_path / "again"))
    assert again.result.history == compiled_run.result.history
    assert same_weights(again.result.model, compiled_run.result.model)
    assert len(compiled_run.curve) == SEQUENCES // 32
    assert json.loads((compiled_run.path / "config.json").read_text())["info"]["compiled"] is True
    # the saved reader is an ordinary NTM: it loads into the eager model and scores what training measured
    model, task, info = load_ntm(compiled_run.path)
    assert model.cell.step.__func__ is NTMCell.step
    best = info["curve"][compiled_run.result.best_epoch - 1]
    valid = FixedSequences.drawn(task, VALID_BATCHES, VALID_BATCH_SIZE, VALID_SEED)
    cost, errors, _ = score_batches(model, list(valid.batches()))
    assert cost == pytest.approx(best["valid_cost_bits"], rel=1e-3, abs=1e-3)
    assert errors == pytest.approx(best["valid_bit_errors"], abs=0.02)


def test_a_stopped_compiled_run_resumes_compiled_and_bit_identical(compiled_run, tmp_path):
    out = tmp_path / "run"
    stopped = train_ntm(compiled_request(out), on_point=stop_at_point(2))
    assert stopped.result.stopped == "interrupted"
    assert json.loads((out / STATE / "request.json").read_text())["request"]["compile"] is True
    assert load_ntm_request(out).compile is True
    resumed = resume_ntm(out)
    assert resumed.result.stopped is None and not (out / STATE).exists()
    assert resumed.result.history == compiled_run.result.history
    assert without_seconds(resumed.curve) == without_seconds(compiled_run.curve)
    assert same_weights(resumed.result.model, compiled_run.result.model)


def test_runs_saved_before_the_flag_resume_eager(tmp_path):
    out = tmp_path / "old"
    train_ntm(tiny_request(out, sequences=96), on_point=stop_at_point(2))
    request_file = out / STATE / "request.json"
    saved = json.loads(request_file.read_text())
    assert saved["request"].pop("compile") is False
    request_file.write_text(json.dumps(saved))
    assert load_ntm_request(out).compile is False
    saved["request"]["compile"] = "yes"
    request_file.write_text(json.dumps(saved))
    with pytest.raises(Exception, match="compile: expected true or false"):
        load_ntm_request(out)


def test_resume_refuses_a_contradicting_compile_flag(tmp_path):
    out = tmp_path / "run"
    train_ntm(tiny_request(out, sequences=96), on_point=stop_at_point(2))
    result = invoke(*["train", "--resume", str(out), "--compile"])
    assert result.exit_code == 1
    assert "--compile True contradicts the run" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("args, message", [
    (["--reader", "lstm", "--task", "copy"], "the LSTM baseline already runs torch's fused LSTM"),
    (["--reader", "memn2n", "--task", "1"], "--compile applies to --reader ntm only"),
    (["--reader", "ntm", "--task", "1"], "--compile applies to --reader ntm only, not bAbI stories"),
])
def test_compile_is_refused_where_it_does_not_apply(tmp_path, args, message):
    result = invoke(*["train", *args, "--compile", "--out", str(tmp_path / "run")])
    assert result.exit_code == 1, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


def test_a_platform_where_torch_compile_fails_gets_one_line_before_training(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found in torch._inductor.config.cpp.cxx\nmore")

    monkeypatch.setattr(ntm_module.torch, "compile", broken)
    ntm_module.check_compile.cache_clear()
    try:
        with pytest.raises(ConfigError, match=r"--compile: torch.compile does not work here \(RuntimeError: "
                                              r"InvalidCxxCompiler.*train without --compile$"):
            ntm_module.check_compile()
        result = invoke(*["train", "--reader", "ntm", "--task", "copy", "--compile", "--sequences", "32",
                         "--out", str(tmp_path / "run"), *SMALL_MEMORY])
    finally:
        ntm_module.check_compile.cache_clear()
    assert result.exit_code == 1
    assert "torch.compile does not work here" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()  # nothing started


@pytest.mark.parametrize("flag", [[], ["--compile"]], ids=["eager", "compiled"])
def test_the_cli_flag_takes_effect(tmp_path, monkeypatch, flag):
    compiled = []
    monkeypatch.setattr(NTMCell, "compile_step", lambda cell: compiled.append(cell))  # what it would compile
    out = tmp_path / "run"
    result = invoke(*["train", "--reader", "ntm", "--task", "copy", *flag, "--sequences", "32", "--eval-every", "32",
                     "--out", str(out), *SMALL_MEMORY])
    assert_ok(result)
    assert len(compiled) == len(flag)
    assert json.loads((out / "config.json").read_text())["info"].get("compiled", False) is bool(flag)
