"""The NTM analysis scripts in benchmarks/ whose numbers the docs quote: their measures on traces built by
hand (where the answer is known), and every script run as documented on tiny trained readers."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from memqa.ntm_evaluate import load_ntm, score_sizes
from memqa_cli.main import app

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
TINY = ["--sequences", "8", "--eval-every", "8", "--batch-size", "8", "--controller-size", "16"]


@pytest.fixture(scope="module")
def scripts():
    sys.path.insert(0, str(BENCHMARKS))  # the scripts import their shared ntm_runs as a sibling
    try:
        yield {name: importlib.import_module(name) for name in ("ntm_priority_heads", "ntm_write_rows",
                                                                "ntm_repeat_marker", "ntm_memory_size",
                                                                "ntm_repeat_slips", "ntm_repeat_count",
                                                                "ntm_average")}
    finally:
        sys.path.remove(str(BENCHMARKS))


def one_hot(rows: torch.Tensor, width: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(rows, width).float()


def test_priority_heads_tell_a_sort_by_priority_from_one_in_input_order(scripts):
    heads = scripts["ntm_priority_heads"]
    batch, size, kept, rows = 16, 20, 16, 32
    priority = torch.rand(batch, size, generator=torch.Generator().manual_seed(0)) * 2 - 1  # (B, T_in)
    by_priority = priority.argsort(dim=1).argsort(dim=1)  # (B, T_in): the row is the priority's rank
    in_order = torch.arange(size).expand(batch, -1)  # (B, T_in): vector i to row i
    writes = torch.stack([one_hot(by_priority, rows), one_hot(in_order, rows),
                          torch.full((batch, size, rows), 1 / rows)], dim=2)  # (B, T_in, 3, N): the last diffuse
    wanted = priority.argsort(dim=1, descending=True)[:, :kept]  # (B, T_out)
    reads = torch.stack([one_hot(wanted, rows),  # the row where head 2 wrote the wanted vector
                         one_hot(torch.full((batch, kept), rows - 1), rows)], dim=2)  # (B, T_out, 2, N): never
    peak, correlation, hits = heads.measure(priority, writes, reads)
    assert peak.tolist() == pytest.approx([1.0, 1.0, 1 / rows])
    assert correlation[0] == pytest.approx(1.0) and abs(correlation[1]) < 0.2
    # the first read head looks where the in-order head wrote the wanted vector; the second never does
    assert hits.tolist() == pytest.approx([1.0, 0.0])
    assert heads.spearman(priority, -priority).tolist() == pytest.approx([-1.0] * batch)


def test_write_rows_count_rows_per_item_and_per_list(scripts):
    count = scripts["ntm_write_rows"]
    batch, items, span, rows = 2, 4, 4, 20
    vector_rows = torch.arange(items * 3).view(items, 3)  # head 1: a row per vector
    item_rows = torch.arange(items)[:, None].expand(items, 3)  # head 2: a row per item
    steps = torch.zeros(items, span, 2, dtype=torch.long)  # (items, span, Hw); the delimiter steps write row 0
    steps[:, 1:, 0], steps[:, 1:, 1] = vector_rows, item_rows
    writes = one_hot(steps.flatten(0, 1), rows).expand(batch, -1, -1, -1)  # (B, T, Hw, N)
    per_item, per_list, peak = count.rows_written(writes, items, span)
    assert per_item.tolist() == [3.0, 1.0] and per_list.tolist() == [12.0, 4.0] and peak == 1.0
    assert count.distinct(torch.tensor([[3, 1, 3], [2, 2, 2]])).tolist() == [2, 1]


def test_repeat_slips_off_boundaries_leaves_out_each_later_repetitions_first_step_and_the_end(scripts):
    # 3 vectors, 3 repeats: answer steps 0-8 are the vectors, 9 the end marker; 3 and 6 start repetitions 2 and 3
    mask = scripts["ntm_repeat_slips"].off_boundaries(3, 3)
    assert mask.nonzero().flatten().tolist() == [0, 1, 2, 4, 5, 7, 8]
    assert scripts["ntm_repeat_slips"].off_boundaries(1, 4).nonzero().flatten().tolist() == [0]


def test_repeat_slips_count_only_keeps_the_sequences_wrong_only_at_boundaries(scripts):
    wrong_bits = torch.zeros(4, 10)  # (B, T_out): 3 vectors × 3 repeats, then the end marker
    wrong_bits[1, [3, 6, 9]] = torch.tensor([1.0, 6.0, 1.0])  # the end marker early at each boundary, and late
    wrong_bits[2, 4] = 2.0  # a repetition's second step
    wrong_bits[3, [0, 3]] = 1.0  # the first repetition's first step is no boundary
    assert scripts["ntm_repeat_slips"].count_only(wrong_bits, 3, 3).tolist() == [True, True, False, False]


@pytest.mark.parametrize("controller", ["lstm", "feedforward"])
def test_repeat_count_weight_norm_reads_the_repeat_channels_column(scripts, controller):
    from memqa.config import NTMConfig
    from memqa.models.ntm import NTMSequenceModel

    model = NTMSequenceModel(NTMConfig(input_size=10, output_size=9, controller=controller, controller_size=4))
    layer = model.cell.controller.layers[0]
    weights = layer.weight_ih if controller == "lstm" else layer.weight  # (G·C, I')
    with torch.no_grad():
        weights.zero_()
        weights[0, 9], weights[1, 9], weights[2, 8] = 3.0, 4.0, 7.0  # the repeat channel's column: norm 5
    assert scripts["ntm_repeat_count"].count_weight_norm(model, 9) == pytest.approx(5.0)


def test_repeat_marker_and_memory_size_parsers(scripts):
    assert scripts["ntm_repeat_marker"].first_return([4, 5, 6, 4, 5]) == 3
    assert scripts["ntm_repeat_marker"].first_return([1, 2, 3]) == 0
    assert scripts["ntm_memory_size"].sizes("10x10,20") == [(10, 10), (20, None)]


def train(out: Path, *args: str) -> Path:
    result = CliRunner().invoke(app, ["train", "--out", str(out), *TINY, *args])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("benchmark-runs")
    return {"priority-sort": train(base / "ps", "--reader", "ntm", "--task", "priority-sort", "--heads", "2",
                                   "--memory-size", "24"),
            "repeat-copy": train(base / "rc", "--reader", "ntm", "--task", "repeat-copy"),  # 128 learned rows
            "associative-recall": train(base / "ar", "--reader", "ntm", "--task", "associative-recall",
                                        "--heads", "1", "--memory-size", "24"),
            "lstm": train(base / "lstm", "--reader", "lstm", "--task", "copy"), "missing": base / "missing"}


def run_script(name: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCHMARKS / name), *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=BENCHMARKS.parent)


@pytest.mark.parametrize("script, task, args, expected", [
    ("ntm_priority_heads.py", "priority-sort", ["--sequences", 4],
     r"\(seed 0\): write head 1: peak [01]\.\d\d, priority-row correlation [+-]\d\.\d\d; write head 2: .*"
     r"read head 1: \d+%; read head 2: \d+%"),
    ("ntm_write_rows.py", "associative-recall", ["--items", 5, "--sequences", 4],
     r"\(seed 0\): \d+\.\d{3} bit errors/seq at 5 items, mean peak write weight [01]\.\d\d; head 0: "
     r"[123]\.\d\d rows/item, \d+\.\d rows/list"),
    ("ntm_repeat_slips.py", "repeat-copy", ["--sizes", "3x2,12x10", "--sequences", 4],
     r"\(seed 0\): 3x2: .*; 12x10: .*read peak.* of them off the boundaries \(\d+% of the sequences with none"),
    ("ntm_repeat_count.py", "repeat-copy", ["--length", 3, "--repeats", "12,20", "--sequences", 4],
     r"\(seed 0\), repeat-channel weight norm \d+\.\d\d, wrong vector bits per sequence in the first 10 repetitions: 3 x 10: \d+\.\d; 3 x 12 \(count 2\.26\): "
     r"\d+\.\d, read head on the 10-repeat row \d+%, with the 10-repeat reads \d+\.\d, with its features \d+\.\d; "
     r"3 x 20 \(count 5\.05\)"),
    ("ntm_repeat_marker.py", "repeat-copy", ["--length", 4, "--repeats", 2, "--move-to", 2, "--sequences", 4],
     r"4 x 2, 4 sequences: as written: step \d+ in \d+.*; marker moved to vector 2: step"),
    ("ntm_repeat_marker.py", "repeat-copy", ["--length", 4, "--repeats", 2, "--hold", "--sequences", 4],
     r"as written: \d+\.\d bit errors/seq, \d+% perfect.*; marker held: "),
    ("ntm_memory_size.py", "repeat-copy", ["--rows", "128,256", "--sizes", "3x2", "--sequences", 4],
     r"trained with 128 rows\)\n  128 rows: bit errors per sequence 3x2 \d+\.\d\d .*\n  256 rows: "),
    ("ntm_initial_memory.py", "repeat-copy", ["--sequences", 4],
     r"distance from the mean of rows 40-119: 0:\d+\.\d\d .*\n   as trained: 5 x 10 \d+\.\d\d"),
])
def test_each_script_runs_as_documented(runs, script, task, args, expected):
    done = run_script(script, runs[task], *args)
    assert done.returncode == 0, done.stderr
    assert re.search(expected, done.stdout), done.stdout


def test_snapshots_script_scores_every_snapshot_and_picks_on_its_own_sequences(tmp_path):
    """ntm_snapshots.py: one row per snapshot, each size's bit errors those of the snapshot on sequences seeded apart
    from the test's (VALID_SEED), the pick the fewest summed (the later on a tie); --test scores the test sequences."""
    from memqa.ntm_evaluate import evaluation_batches
    from memqa.ntm_pipeline import score_batches, snapshots

    out = train(tmp_path / "rc", "--reader", "ntm", "--task", "repeat-copy", "--eval-every", "4", "--batch-size", "4",
                "--snapshot-every", "4", "--memory-size", "24")
    snapshot_row = re.compile(  # seed | sequences | run's validation | 3x2 (perfect) | 2x3 (perfect) | sum
        r"^0 \| (\d+) \| \d+\.\d{3} \| (\d+\.\d{3}) \(\d+\.\d%\) \| (\d+\.\d{3}) .* \| (\d+\.\d{3})$", re.MULTILINE)
    rows = {}
    for seed_name, valid_seed in (("validation", 3_000_017), ("test", 2_000_003)):
        done = run_script("ntm_snapshots.py", out, "--sizes", "3x2,2x3", "--sequences", 6,
                          *(["--test"] if seed_name == "test" else []))
        assert done.returncode == 0, done.stderr
        assert f"2 snapshots, 6 {seed_name} sequences per size" in done.stdout
        found = snapshot_row.findall(done.stdout)
        assert [row[0] for row in found] == ["4", "8"], done.stdout
        for path, row in zip(snapshots(out), found):
            model, task, _ = load_ntm(path)
            for (length, repeats), shown in zip([(3, 2), (2, 3)], row[1:3]):
                batches = evaluation_batches(task, length, 6, seed=valid_seed, repeats=repeats)
                assert float(shown) == pytest.approx(score_batches(model, batches)[1], abs=5e-4)
        totals = [float(row[3]) for row in found]
        picked = "8" if totals[1] <= totals[0] else "4"
        assert re.search(rf"(picked|lowest at test \(not a pick\)): {re.escape(str(out))}/snapshots/seed0/{picked} ",
                         done.stdout), done.stdout
        rows[seed_name] = found
    assert rows["validation"] != rows["test"]  # other sequences
    done = run_script("ntm_snapshots.py", out, "--sizes", "3x2,2x3", "--sequences", 6, "--from", 5)
    assert done.returncode == 0 and "1 snapshot, 6 validation sequences" in done.stdout, done.stderr
    assert snapshot_row.findall(done.stdout) == [found for found in rows["validation"] if found[0] == "8"]
    done = run_script("ntm_snapshots.py", out, "--sizes", "3x2", "--from", 9)
    assert done.returncode == 1 and "no snapshots at 9 sequences or later; give a smaller --from" in done.stderr
    done = run_script("ntm_snapshots.py", tmp_path / "rc-none", "--sizes", "3x2")
    assert done.returncode == 1 and "no snapshots; train with `memqa train ... --snapshot-every N" in done.stderr


def test_average_script_saves_the_mean_of_the_picked_windows_snapshots(tmp_path, scripts):
    """ntm_average.py: each window's row is the score of its snapshots' mean weights on the validation sequences
    (VALID_SEED), the window with the fewest bit errors summed is saved (the first listed on a tie) as a reader whose
    weights are that mean, and memqa evaluate reads it."""
    from memqa.ntm_evaluate import evaluation_batches
    from memqa.ntm_pipeline import score_batches, snapshots

    out = train(tmp_path / "rc", "--reader", "ntm", "--task", "repeat-copy", "--sequences", "12", "--eval-every", "4",
                "--batch-size", "4", "--snapshot-every", "4", "--memory-size", "24")
    taken = snapshots(out)
    assert [path.name for path in taken] == ["4", "8", "12"]
    states = [load_ntm(path)[0].state_dict() for path in taken]
    done = run_script("ntm_average.py", out, "--windows", "4-12,8-12,12-12", "--sizes", "3x2,2x3", "--sequences", 6,
                      "--out", tmp_path / "avg")
    assert done.returncode == 0, done.stderr
    window_row = r"^(\d+)-(\d+) \| (\d) \| (\d+\.\d{3}) \(\d+\.\d%\) \| (\d+\.\d{3}) .* \| (\d+\.\d{3})$"
    found = re.findall(window_row, done.stdout, re.MULTILINE)
    assert [row[:3] for row in found] == [("4", "12", "3"), ("8", "12", "2"), ("12", "12", "1")], done.stdout
    model, task, _ = load_ntm(taken[-1])
    for first, row in zip((0, 1, 2), found):
        model.load_state_dict(scripts["ntm_average"].average_state(states[first:]))
        for (length, repeats), shown in zip([(3, 2), (2, 3)], row[3:5]):
            batches = evaluation_batches(task, length, 6, seed=3_000_017, repeats=repeats)
            assert float(shown) == pytest.approx(score_batches(model, batches)[1], abs=5e-4)
    totals = [float(row[5]) for row in found]
    picked = totals.index(min(totals))
    assert f"picked: {found[picked][0]}-{found[picked][1]} ({found[picked][2]} snapshot" in done.stdout
    saved, _, info = load_ntm(tmp_path / "avg")
    mean = scripts["ntm_average"].average_state(states[picked:])
    assert all(torch.equal(saved.state_dict()[name], mean[name]) for name in mean)
    assert info["average_of"]["snapshots"] == [int(path.name) for path in taken[picked:]] and "scores" not in info
    assert "## Averaged weights" in (tmp_path / "avg" / "README.md").read_text()
    result = CliRunner().invoke(app, ["evaluate", str(tmp_path / "avg"), "--lengths", "3", "--repeats", "2"])
    assert result.exit_code == 0, result.output
    done = run_script("ntm_average.py", out, "--windows", "13-20", "--sizes", "3x2", "--out", tmp_path / "none")
    assert done.returncode == 1 and "no snapshots between 13 and 20 sequences; it has them from 4 to 12" in done.stderr
    done = run_script("ntm_average.py", out, "--windows", "12-4", "--sizes", "3x2", "--out", tmp_path / "none")
    assert done.returncode == 2 and "'12-4': give each window as FROM-TO in sequences, FROM <= TO" in done.stderr


def test_average_state_is_the_mean_and_keeps_what_is_not_a_weight(scripts):
    states = [{"w": torch.tensor([1.0, 2.0]), "n": torch.tensor([3])},
              {"w": torch.tensor([3.0, 6.0]), "n": torch.tensor([3])}]
    averaged = scripts["ntm_average"].average_state(states)
    assert torch.equal(averaged["w"], torch.tensor([2.0, 4.0])) and torch.equal(averaged["n"], torch.tensor([3]))
    with pytest.raises(SystemExit, match="n: differs between the snapshots"):
        scripts["ntm_average"].average_state([states[0], {**states[1], "n": torch.tensor([4])}])


def test_repeat_slips_reads_the_sequences_memqa_evaluate_scores_when_asked(runs):
    """--evaluate-sequences: the wrong bits per sequence are memqa evaluate's on the same size (70 sequences: two
    batches of its, joined)."""
    done = run_script("ntm_repeat_slips.py", runs["repeat-copy"], "--sizes", "3x4", "--sequences", 70,
                      "--evaluate-sequences")
    assert done.returncode == 0, done.stderr
    found = re.search(r"wrong bits per sequence (\d+\.\d\d) in the vectors and (\d+\.\d\d) on the end-marker",
                      done.stdout)
    assert found, done.stdout
    model, task, _ = load_ntm(runs["repeat-copy"])
    [score] = score_sizes(model.eval(), task, [3], repeats=4, sequences=70)
    assert sum(map(float, found.groups())) == pytest.approx(score.bit_errors, abs=0.011)


@pytest.mark.parametrize("script, task, args, message", [
    ("ntm_priority_heads.py", "repeat-copy", [], "an NTM of repeat-copy; this script reads priority-sort runs"),
    ("ntm_write_rows.py", "priority-sort", [], "an NTM of priority-sort; this script reads associative-recall runs"),
    ("ntm_memory_size.py", "associative-recall", [], "an NTM of associative-recall; this script reads copy or repeat-copy runs"),
    ("ntm_repeat_slips.py", "missing", [], "missing: no such reader folder"),
    ("ntm_repeat_count.py", "repeat-copy", ["--repeats", "8,20"], "--repeats: give counts above the trained 10, got 8"),
    ("ntm_repeat_count.py", "priority-sort", [], "an NTM of priority-sort; this script reads repeat-copy runs"),
    ("ntm_repeat_slips.py", "repeat-copy", ["--memory-size", 64], "a memory of 64 rows: this NTM was trained with 128"),
    ("ntm_initial_memory.py", "lstm", [], "the LSTM baseline of copy, which has no memory; this script reads NTM runs"),
    ("ntm_repeat_marker.py", "repeat-copy", ["--length", 4, "--move-to", 5], "--move-to must be between 2 and --length (4)"),
])
def test_bad_input_is_one_line(runs, script, task, args, message):
    done = run_script(script, runs[task], *args)
    assert done.returncode == 1 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_repeat_slips_refuses_a_size_without_repeats(runs):
    done = run_script("ntm_repeat_slips.py", runs["repeat-copy"], "--sizes", "3x2,12")
    assert done.returncode == 2, done.stderr
    assert "--sizes: 12 has no repeats: give each size as LENGTHxREPEATS, as 10x20" in done.stderr


def test_the_reader_ablation_runs_as_documented(tmp_path):
    # benchmarks/ntm_reader_ablation.py, as docs/ntm-reader.md runs it, on the tiny fixture as task 1 (1 epoch).
    from helpers import babi_tree

    done = run_script("ntm_reader_ablation.py", "--task", 1, "--data", "en", "--epochs", 1,
                      "--data-dir", babi_tree(tmp_path, tasks=(1,)))
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    assert [row.split(" | ")[0] for row in rows[1:]] == [
        "| defaults (feed-forward controller, two heads, temporal encoding, head start)", "| --heads 1", "| --controller lstm",
        "| --no-temporal", "| no head start"]


@pytest.mark.parametrize("buckets", [0, 2])
def test_train_speed_times_the_ntm_reader_with_and_without_length_buckets(tmp_path, monkeypatch, buckets):
    # benchmarks/train_speed.py, as docs/ntm-reader.md runs it (--epochs 1), on the tiny fixture as task 1
    from helpers import babi_tree

    monkeypatch.setenv("MEMQA_BABI_DIR", str(babi_tree(tmp_path, tasks=(1,))))
    done = run_script("train_speed.py", "--reader", "ntm-qa", "--tasks", 1, "--epochs", 1, "--length-buckets", buckets,
                      "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["reader"] == "ntm-qa" and summary["length_buckets"] == buckets
    assert [(row["task"], row["epochs"]) for row in summary["runs"]] == [(1, 1)]
    assert summary["runs"][0]["questions_per_second"] > 0
