"""memqa on a CUDA GPU (skipped where there is none, as on CI): every reader trains with `--device cuda`,
its saved folder reloads on the CPU with the same answers and scores, `memqa evaluate`, `ask` and `plot`
take `--device cuda`, and a run stopped on the GPU resumes to the weights of a run never stopped."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest
import torch
from helpers import TINY_TEST, TINY_TRAIN
from test_cli import assert_ok, invoke
from test_ntm_cli import SMALL_MEMORY
from test_ntm_resume import same_weights, stop_at_point, two_seed_request, without_seconds
from test_resume_cli import interrupt_on_epoch_call

from memqa.data.babi import read_babi_file
from memqa.ntm_evaluate import load_ntm, score_sizes
from memqa.ntm_pipeline import resume_ntm, train_ntm
from memqa.reader import load_reader

# cuBLAS gives the same sums run after run only with a fixed workspace, set before it starts (torch docs,
# "Reproducibility"); the resume tests below turn deterministic algorithms on.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")

BABI_FAST = {"memn2n": ["--epochs", "6", "--linear-start-epochs", "2", "--batch-size", "8"],
             "memnn": ["--epochs", "3", "--batch-size", "8", "--embedding-dim", "10"],
             "ntm": ["--epochs", "3", "--batch-size", "8", "--controller-size", "16"]}  # the NTM reader of stories
COPY_FAST = ["--task", "copy", "--sequences", "64", "--eval-every", "32", "--batch-size", "8"]
SMALL = {"ntm": SMALL_MEMORY, "lstm": ["--controller-size", "16"]}
STORY = "Mary moved to the bathroom. John went to the hallway. Mary travelled to the office."


@pytest.fixture
def deterministic():
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(False)


@pytest.fixture(scope="module", params=["memn2n", "memnn", "ntm"])
def babi_run(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"cuda-{request.param}") / "reader"
    assert_ok(invoke("train", "--reader", request.param, "--train-file", TINY_TRAIN, "--test-file", TINY_TEST,
                     "--out", out, "--device", "cuda", *BABI_FAST[request.param]))
    return out


def test_a_babi_reader_trained_on_cuda_answers_the_same_on_the_cpu(babi_run):
    gpu, cpu = load_reader(babi_run, "cuda"), load_reader(babi_run, "cpu")
    assert next(gpu.model.parameters()).is_cuda and not next(cpu.model.parameters()).is_cuda
    for question in ("Where is Mary?", "Where is John?"):
        on_gpu, on_cpu = gpu.answer(STORY, question), cpu.answer(STORY, question)
        assert on_gpu.answer == on_cpu.answer
        assert on_gpu.confidence == pytest.approx(on_cpu.confidence, abs=1e-4)
        for hop_gpu, hop_cpu in zip(on_gpu.hops, on_cpu.hops, strict=True):
            assert hop_gpu.weights == pytest.approx(hop_cpu.weights, abs=1e-4)
    examples = read_babi_file(TINY_TEST)
    assert gpu.evaluate(examples) == cpu.evaluate(examples)


def test_evaluate_and_ask_take_device_cuda(babi_run):
    reports = [json.loads(assert_ok(invoke("evaluate", babi_run, "--test-file", TINY_TEST, "--format", "json",
                                           "--device", device)))["tasks"] for device in ("cuda", "cpu")]
    assert reports[0] == reports[1]
    stdout = assert_ok(invoke("ask", babi_run, "--text", STORY, "--question", "Where is Mary?", "--device", "cuda"))
    assert "hop 1" in stdout and "confidence" in stdout


@pytest.mark.parametrize("reader", ["ntm", "lstm"])
def test_an_algorithmic_reader_trained_on_cuda_scores_the_same_on_the_cpu(tmp_path, reader):
    out = tmp_path / reader
    assert_ok(invoke("train", "--reader", reader, *COPY_FAST, *SMALL[reader], "--out", out, "--device", "cuda"))
    reports = [json.loads(assert_ok(invoke("evaluate", out, "--lengths", "2,6", "--sequences", 16, "--format", "json",
                                           "--device", device)))["scores"] for device in ("cuda", "cpu")]
    for on_gpu, on_cpu in zip(*reports, strict=True):
        assert on_gpu["size"] == on_cpu["size"]
        assert on_gpu["cost_bits"] == pytest.approx(on_cpu["cost_bits"], rel=1e-4, abs=1e-4)
        assert on_gpu["bit_errors"] == pytest.approx(on_cpu["bit_errors"], abs=0.2)  # a bit at 0.5 may round either way
    if reader == "ntm":
        model, task, _ = load_ntm(out, "cuda")
        larger = score_sizes(model.with_memory_rows(20), task, [14], sequences=8, device="cuda")[0]
        report = json.loads(assert_ok(invoke("evaluate", out, "--lengths", "14", "--sequences", 8, "--memory-size",
                                             20, "--format", "json", "--device", "cuda")))
        assert report["scores"][0]["bit_errors"] == pytest.approx(larger.bit_errors)
        pytest.importorskip("matplotlib", reason="plots need the memqa[plots] extra")
        assert_ok(invoke("plot", out, "--out", tmp_path / "img" / "copy", "--lengths", "2,4", "--sequences", 4,
                         "--episode-length", 3, "--device", "cuda"))
        assert (tmp_path / "img" / "copy-episode.png").read_bytes()[:4] == b"\x89PNG"


def test_a_stopped_memn2n_run_on_cuda_resumes_to_the_uninterrupted_weights(tmp_path, monkeypatch, deterministic):
    run = ["--train-file", TINY_TRAIN, "--epochs", "12", "--linear-start-epochs", "3", "--batch-size", "4",
           "--repeats", "2", "--device", "cuda"]
    reference = tmp_path / "reference"
    assert_ok(invoke("train", *run, "--out", reference))
    stopped = tmp_path / "stopped"
    interrupt_on_epoch_call(monkeypatch, 18)  # in run 2 of 2
    assert_ok(invoke("train", *run, "--out", stopped))
    monkeypatch.undo()
    assert_ok(invoke("train", "--resume", stopped))
    assert (stopped / "model.safetensors").read_bytes() == (reference / "model.safetensors").read_bytes()


def test_a_stopped_ntm_run_on_cuda_resumes_to_the_uninterrupted_weights(tmp_path, deterministic):
    def request(out):
        return dataclasses.replace(two_seed_request(out), device="cuda")

    uninterrupted = train_ntm(request(tmp_path / "reference"))
    stopped = train_ntm(request(tmp_path / "run"), on_point=stop_at_point(5))
    assert stopped.result.stopped == "interrupted"
    resumed = resume_ntm(tmp_path / "run")
    assert resumed.result.best_epoch == uninterrupted.result.best_epoch
    assert without_seconds(resumed.curve) == without_seconds(uninterrupted.curve)
    assert same_weights(resumed.result.model, uninterrupted.result.model)
