"""The memqa command line through typer's CliRunner, against the tiny fixtures."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import torch
from helpers import TINY_TEST, TINY_TRAIN
from safetensors import safe_open
from typer.testing import CliRunner

from memqa.data.babi import read_babi_file
from memqa.reader import load_reader
from memqa_cli.main import app

FAST = ["--epochs", "5", "--linear-start-epochs", "2", "--batch-size", "8"]
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@pytest.fixture(autouse=True, scope="module")
def wide_console():
    """Rich fixes its width when the console is made (80 columns off a terminal): widen stdout's so
    that table cells (file names, sentences) are not cut. stderr keeps 80: errors must not wrap."""
    from memqa_cli import console

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(console.console, "width", 200)
        yield


@pytest.fixture(autouse=True)
def no_debug(monkeypatch):
    monkeypatch.delenv("MEMQA_DEBUG", raising=False)


def invoke(*args, input=None):
    return CliRunner().invoke(app, [str(a) for a in args], input=input)


def plain(text: str) -> str:
    return ANSI.sub("", text)


def assert_ok(result):
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.output}\n{result.exception!r}"
    return plain(result.stdout)


def table_row(stdout: str, label: str) -> list[str]:
    """The cells of the row for `label` in the "trained readers" table (after the progress bars)."""
    table = stdout[stdout.index("trained readers"):]
    line = next(line for line in table.splitlines() if label in line)
    return [cell.strip() for cell in re.split(r"[│|]", line) if cell.strip()]


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 1, f"exit {result.exit_code}\n{result.output}\n{result.exception!r}"
    assert isinstance(result.exception, SystemExit)  # a clean exit, not an escaped exception
    lines = [line for line in plain(result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def cli_reader(tmp_path_factory):
    """A reader trained by `memqa train` on the tiny fixture (few epochs: its answers are not checked)."""
    out = tmp_path_factory.mktemp("cli") / "reader"
    result = invoke("train", "--train-file", TINY_TRAIN, "--test-file", TINY_TEST, "--out", out, *FAST)
    return out, result


# --- train -------------------------------------------------------------------------------------


def test_train_writes_a_reader_and_prints_a_table(cli_reader):
    out, result = cli_reader
    stdout = assert_ok(result)
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors", "vocab.json"]
    assert "trained readers" in stdout
    info = json.loads((out / "config.json").read_text())["info"]
    row = table_row(stdout, "tiny_train.txt")
    # reader, best epoch, train %, valid %, test %, seconds, saved to
    assert row[1] == str(info["best_epoch"])
    assert row[2] == f"{100 * info['scores']['train']:.1f}" and row[3] == f"{100 * info['scores']['valid']:.1f}"
    assert row[4] == f"{100 * info['scores']['test']:.1f}"
    assert info["epochs_run"] == 7 and info["stopped"] is None
    assert info["train_config"]["epochs"] == 5 and info["train_config"]["linear_start_epochs"] == 2


def test_train_without_test_file(tmp_path):
    out = tmp_path / "r"
    stdout = assert_ok(invoke("train", "--train-file", TINY_TRAIN, "--out", out, "--epochs", "1",
                              "--linear-start-epochs", "0"))
    row = table_row(stdout, "tiny_train.txt")
    assert row[4] == "-"  # no test score
    assert "test" not in json.loads((out / "config.json").read_text())["info"]["scores"]


@pytest.mark.parametrize(
    "flags, check",
    [
        (["--hops", "2"], lambda config, shapes: config["hops"] == 2 and "embeddings.3.word_embedding.weight" not in shapes
         and "embeddings.2.word_embedding.weight" in shapes),
        (["--embedding-dim", "8"], lambda config, shapes: config["encoder"]["embedding_dim"] == 8
         and all(shape[-1] == 8 for shape in shapes.values())),
        (["--encoding", "bow"], lambda config, shapes: config["encoder"]["encoding"] == "bow"),
        (["--no-temporal"], lambda config, shapes: config["encoder"]["temporal"] is False
         and not any("temporal" in name for name in shapes)),
        (["--memory-size", "6"], lambda config, shapes: config["encoder"]["memory_size"] == 6
         and shapes["embeddings.0.temporal_embedding"] == [6, 20]),
        (["--weight-tying", "layerwise"], lambda config, shapes: config["weight_tying"] == "layerwise"
         and "hop_map.weight" in shapes and len({n.split(".")[1] for n in shapes if n.startswith("embeddings")}) == 3),
        (["--random-noise", "0"], lambda config, shapes: config["random_noise"] == 0),
        (["--relu"], lambda config, shapes: config["relu"] is True),
        (["--dropout", "0.2"], lambda config, shapes: config["dropout"] == 0.2),
        (["--linear-start-epochs", "0"], lambda config, shapes: config["linear_start"] is False),
        (["--position-scale", "1"], lambda config, shapes: config["encoder"]["position_scale"] == 1.0),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else "",
)
def test_train_flags_take_effect(tmp_path, flags, check):
    out = tmp_path / "r"
    assert_ok(invoke("train", "--train-file", TINY_TRAIN, "--out", out, "--epochs", "1", *flags))
    config = json.loads((out / "config.json").read_text())["model"]
    with safe_open(str(out / "model.safetensors"), "pt") as weights:
        shapes = {name: list(weights.get_slice(name).get_shape()) for name in weights.keys()}
    assert check(config, shapes), (config, shapes)


@pytest.mark.parametrize("flags, linear_start_lr, lr", [
    (["--lr", "0.02"], 0.02, 0.02),  # with linear start both phases run at --lr
    (["--lr", "0.02", "--linear-start-epochs", "0"], 0.005, 0.02),
])
def test_learning_rate_flag_takes_effect(tmp_path, flags, linear_start_lr, lr):
    out = tmp_path / "r"
    assert_ok(invoke("train", "--train-file", TINY_TRAIN, "--out", out, "--epochs", "1", *flags))
    train_config = json.loads((out / "config.json").read_text())["info"]["train_config"]
    assert train_config["linear_start_learning_rate"] == linear_start_lr and train_config["learning_rate"] == lr


def test_schedule_and_weight_decay_flags_reach_the_training_config(tmp_path):
    out = tmp_path / "r"
    assert_ok(invoke("train", "--train-file", TINY_TRAIN, "--out", out, "--epochs", "2", "--decay-every", "1",
                     "--decay-factor", "0.25", "--weight-decay", "0.001"))
    train_config = json.loads((out / "config.json").read_text())["info"]["train_config"]
    assert (train_config["decay_every"], train_config["decay_factor"], train_config["weight_decay"]) == (1, 0.25, 0.001)
    assert_one_line_error(invoke("train", "--train-file", TINY_TRAIN, "--out", tmp_path / "bad", "--weight-decay", "-1"),
                          "weight_decay must be >= 0")


def test_train_hops_show_in_attention(tmp_path):
    out = tmp_path / "r"
    assert_ok(invoke("train", "--train-file", TINY_TRAIN, "--out", out, "--hops", "2", "--epochs", "1"))
    answer = load_reader(out).answer("Mary went to the kitchen.", "Where is Mary?")
    assert len(answer.hops) == 2
    stdout = assert_ok(invoke("ask", out, "--text", "Mary went to the kitchen.", "-q", "Where is Mary?"))
    assert "hop 2" in stdout and "hop 3" not in stdout


def test_train_seed_and_repeats(tmp_path):
    for name in ("a", "b"):
        assert_ok(invoke("train", "--train-file", TINY_TRAIN, "--out", tmp_path / name, "--epochs", "2",
                         "--seed", "4", "--repeats", "2"))
    a, b = (json.loads((tmp_path / n / "config.json").read_text())["info"] for n in ("a", "b"))
    assert a["seed"] in (4, 5) and a["seed"] == b["seed"]
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()


# --- evaluate ----------------------------------------------------------------------------------


def test_evaluate_json(cli_reader):
    out, _ = cli_reader
    stdout = assert_ok(invoke("evaluate", out, "--test-file", TINY_TEST, "--format", "json"))
    report = json.loads(stdout)
    (row,) = report["tasks"]
    expected = load_reader(out).evaluate(read_babi_file(TINY_TEST))
    assert row["accuracy"] == pytest.approx(expected)
    assert row["questions"] == 4 and row["task"] == "tiny_test.txt"
    assert row["error"] == pytest.approx(round(100 * (1 - expected), 2))
    assert report["failed"] == (0 if expected >= 0.95 else 1)


def test_evaluate_markdown_and_output_file(cli_reader, tmp_path):
    out, _ = cli_reader
    stdout = assert_ok(invoke("evaluate", out, "--test-file", TINY_TEST, "--format", "markdown"))
    lines = stdout.strip().splitlines()
    assert lines[0].startswith("| task |") and lines[1].startswith("|---")
    assert lines[2].startswith("| tiny_test.txt | 4 |")
    target = tmp_path / "report.json"
    assert_ok(invoke("evaluate", out, "--test-file", TINY_TEST, "--format", "json", "--output", target))
    assert json.loads(target.read_text())["tasks"][0]["questions"] == 4


def test_evaluate_table(cli_reader):
    out, _ = cli_reader
    stdout = assert_ok(invoke("evaluate", out, "--test-file", TINY_TEST))
    assert "tiny_test.txt" in stdout and "mean" in stdout


# --- ask -------------------------------------------------------------------------------------


def test_ask_text(cli_reader):
    out, _ = cli_reader
    story = "Mary moved to the bathroom. John went to the hallway. Mary went to the kitchen."
    result = invoke("ask", out, "--text", story, "-q", "Where is Mary?")
    stdout = assert_ok(result)
    expected = load_reader(out).answer(story, "Where is Mary?")
    first = stdout.strip().splitlines()[0]
    assert first.startswith(expected.answer) and f"confidence {expected.confidence:.2f}" in first
    assert all(f"hop {k}" in stdout for k in (1, 2, 3))
    assert "Mary went to the kitchen." in stdout
    assert result.stderr == ""  # no notes: every word is known


def test_ask_notes_unknown_words(cli_reader):
    out, _ = cli_reader
    result = invoke("ask", out, "--text", "Zorro went to the kitchen.", "-q", "Where is Zorro?")
    assert_ok(result)
    assert "unknown words ignored" in plain(result.stderr) and "zorro" in plain(result.stderr)


def test_ask_story_from_stdin(cli_reader):
    out, _ = cli_reader
    story = "1 Sandra went to the office.\n2 Daniel moved to the garden.\n"
    stdout = assert_ok(invoke("ask", out, "--story", "-", "-q", "Where is Daniel?", input=story))
    expected = load_reader(out).answer(story, "Where is Daniel?")
    assert stdout.strip().splitlines()[0].startswith(expected.answer)
    assert "Daniel moved to the garden." in stdout


def test_ask_story_file_and_long_story_note(cli_reader, tmp_path):
    out, _ = cli_reader
    story = tmp_path / "story.txt"
    story.write_text("\n".join("Mary went to the office. John went to the garden." for _ in range(30)))
    result = invoke("ask", out, "--story", story, "-q", "Where is John?", "--top", "2")
    assert_ok(result)
    # The memory holds min(--memory-size, longest training story) sentences (as the authors' code).
    import json

    slots = json.loads((out / "config.json").read_text())["model"]["encoder"]["memory_size"]
    assert slots < 60
    assert f"the {60 - slots} oldest sentences were left out" in plain(result.stderr)


# --- errors: one red line, exit code 1 -------------------------------------------------------


def test_error_missing_reader_folder(tmp_path):
    missing = tmp_path / "nope"
    assert_one_line_error(invoke("ask", missing, "--text", "Mary went home.", "-q", "Where is Mary?"), str(missing))
    assert_one_line_error(invoke("evaluate", missing, "--test-file", TINY_TEST), str(missing))


def test_error_malformed_training_file(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("1 Mary went home.\n2 John left.\n4 Where is Mary?\thome\t1\n")
    assert_one_line_error(invoke("train", "--train-file", bad, "--out", tmp_path / "r", *FAST), f"{bad}:3")
    assert not (tmp_path / "r").exists()


def test_error_missing_training_file(tmp_path):
    assert_one_line_error(invoke("train", "--train-file", tmp_path / "none.txt", "--out", tmp_path / "r"), "none.txt")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is available here")
def test_error_cuda_without_gpu(tmp_path, cli_reader):
    assert_one_line_error(invoke("train", "--train-file", TINY_TRAIN, "--out", tmp_path / "r", "--device", "cuda",
                                 *FAST), "cuda")
    assert_one_line_error(invoke("ask", cli_reader[0], "--text", "Mary went home.", "-q", "Where is Mary?",
                                 "--device", "cuda"), "cuda")


def test_error_bad_format(cli_reader):
    assert_one_line_error(invoke("evaluate", cli_reader[0], "--test-file", TINY_TEST, "--format", "xml"), "xml")


def test_error_ask_problems(cli_reader, tmp_path):
    out, _ = cli_reader
    assert_one_line_error(invoke("ask", out, "-q", "Where is Mary?"), "--story")  # no story at all
    assert_one_line_error(invoke("ask", out, "--text", "", "-q", "Where is Mary?"), "empty")
    assert_one_line_error(invoke("ask", out, "--text", "Mary went home.", "-q", "Quo vadis?"), "quo")
    assert_one_line_error(invoke("ask", out, "--story", tmp_path / "none.txt", "-q", "Where?"), "none.txt")


def test_error_bad_option_values(tmp_path):
    common = ["train", "--train-file", TINY_TRAIN, "--out", tmp_path / "r"]
    assert_one_line_error(invoke(*common, "--hops", "0"), "hops")
    assert_one_line_error(invoke(*common, "--encoding", "lstm"), "encoding")
    assert_one_line_error(invoke(*common, "--reader", "transformer"), "transformer")
    assert_one_line_error(invoke("train", "--test-file", TINY_TEST, "--out", tmp_path / "r"), "--test-file")


def test_memqa_debug_shows_the_traceback(monkeypatch, tmp_path):
    monkeypatch.setenv("MEMQA_DEBUG", "1")
    result = invoke("ask", tmp_path / "nope", "--text", "Mary went home.", "-q", "Where is Mary?")
    assert result.exit_code == 1
    from memqa.errors import CheckpointError

    assert isinstance(result.exception, CheckpointError)


# --- startup -----------------------------------------------------------------------------------

HELP_WITHOUT_TORCH = """
import json, sys
from typer.testing import CliRunner
from memqa_cli.main import app
results = {}
for args in (["--help"], ["train", "--help"], ["evaluate", "--help"], ["ask", "--help"], ["download", "--help"]):
    result = CliRunner().invoke(app, args)
    results[" ".join(args)] = [result.exit_code, "Usage" in result.output, "torch" in sys.modules]
import memqa
memqa.__version__
results["import memqa"] = "torch" in sys.modules
import memqa.reader  # control: the same check does see torch once something imports it
results["control"] = "torch" in sys.modules
print(json.dumps(results))
"""


def test_help_does_not_import_torch():
    completed = subprocess.run([sys.executable, "-c", HELP_WITHOUT_TORCH], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    results = json.loads(completed.stdout.strip().splitlines()[-1])
    control = results.pop("control")
    assert results.pop("import memqa") is False
    for args, (exit_code, has_usage, torch_loaded) in results.items():
        assert exit_code == 0 and has_usage, args
        assert torch_loaded is False, f"`memqa {args}` imported torch"
    assert control is True


def test_help_module_entry_point_imports_no_torch():
    """`python -X importtime` lists every module imported; torch must not be among them."""
    def imported(*argv):
        completed = subprocess.run([sys.executable, "-X", "importtime", *argv], capture_output=True, text=True,
                                   timeout=60)
        names = {line.rsplit("|", 1)[-1].strip() for line in completed.stderr.splitlines() if "|" in line}
        return completed, names

    completed, names = imported("-m", "memqa_cli.main", "--help")
    assert completed.returncode == 0 and "Usage" in completed.stdout
    assert "memqa_cli.main" in names or "memqa_cli.train" in names  # the listing works
    assert "torch" not in names
    _, control = imported("-c", "import memqa.reader")
    assert "torch" in control
