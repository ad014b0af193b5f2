"""Where associative-recall NTMs store the items: memory rows written per item, per write head.

    python benchmarks/ntm_write_rows.py runs/ntm-ar-s0 runs/ntm-ar-s1 ... [--items 12] [--sequences 64]

For every write head, over the steps that list the items (each item's three vectors): the mean number
of distinct rows that get the head's largest write weight within one item, and within the whole list.
A head that stores each item in a row of its own (the paper's account, §4.3) shows 1 row per item and
one row per item in the list; one that stores every vector in a row of its own shows 3 and 3 × items.
Also printed: the mean of each step's largest write weight (1 is a one-hot write), and the reader's
bit errors per sequence at that many items (the test sequences of `memqa evaluate`).
"""

from __future__ import annotations

import argparse

import torch

from ntm_runs import load_run

from memqa.ntm_evaluate import TEST_SEED, score_sizes


def distinct(rows: torch.Tensor) -> torch.Tensor:
    """rows (..., K) of integers -> (...) the number of distinct values in each row."""
    ordered = rows.sort(dim=-1).values
    return 1 + (ordered[..., 1:] != ordered[..., :-1]).sum(dim=-1)


def rows_written(writes: torch.Tensor, items: int, span: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    """writes (B, T, Hw, N), the list's `items` items of `span` steps first (a delimiter, then the vectors) ->
    (rows per item (Hw,), rows per list (Hw,), the mean largest write weight at the vectors' steps)."""
    listed = writes[:, : items * span].unflatten(1, (items, span))[:, :, 1:]  # (B, items, span - 1, Hw, N)
    rows = listed.argmax(dim=-1).movedim(-1, 1)  # (B, Hw, items, span - 1)
    return distinct(rows).float().mean(dim=(0, 2)), distinct(rows.flatten(2)).float().mean(dim=0), \
        listed.max(dim=-1).values.mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--items", type=int, default=12)
    parser.add_argument("--sequences", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for path in args.runs:
        model, task, info = load_run(path, "associative-recall")
        batch = task.sample(args.sequences, torch.Generator().manual_seed(TEST_SEED), size=args.items)
        with torch.no_grad():
            writes = model(batch, trace=True).trace.write_weightings  # (B, T, Hw, N)
        per_item, per_list, peak = rows_written(writes, args.items, task.item_length + 1)
        errors = score_sizes(model, task, [args.items])[0].bit_errors
        heads = "; ".join(f"head {h}: {per_item[h]:.2f} rows/item, {per_list[h]:.1f} rows/list"
                          for h in range(per_item.shape[0]))
        print(f"{path} (seed {info['seed']}): {errors:.3f} bit errors/seq at {args.items} items, "
              f"mean peak write weight {peak:.2f}; {heads}")


if __name__ == "__main__":
    main()
