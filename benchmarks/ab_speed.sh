#!/bin/bash
# MemN2N training speed of this tree against an older commit, run alternately on the same machine:
# task 1's 100 epochs (train_speed.py) ROUNDS times each, then the step time (step_time.py) twice each.
#
#   MEMQA_BABI_DIR=/path/to/tasks_1-20_v1-2 benchmarks/ab_speed.sh b6a4c01 [ROUNDS]
#
# Lines start with "new" (this tree) or "old" (the commit, from a temporary git worktree).
set -euo pipefail
old_commit=${1:?usage: benchmarks/ab_speed.sh OLD_COMMIT [ROUNDS]}
rounds=${2:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$root/.venv/bin/python}
worktree=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$worktree"' EXIT
git -C "$root" worktree add --detach "$worktree" "$old_commit" > /dev/null

new() { (cd "$root" && "$python" "$@"); }
old() { (cd "$worktree" && PYTHONPATH="$worktree" "$python" "$@"); }

for _ in $(seq "$rounds"); do
  echo "new $(new benchmarks/train_speed.py --tasks 1 | tail -1)"
  echo "old $(old benchmarks/train_speed.py --tasks 1 | tail -1)"
done
for _ in 1 2; do
  echo "new $(new "$root/benchmarks/step_time.py")"
  echo "old $(old "$root/benchmarks/step_time.py")"
done
