"""A download process killed with SIGKILL (not an exception: no cleanup code runs) half-way through
fetching or unpacking leaves no tree, and the next download cleans up and succeeds. test_download.py
covers interrupts that raise, two downloads at once and a lock left by a dead holder."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

import pytest
from test_download import BABI_ARCHIVE_ROOT, archive, assert_complete, dest, local_only  # noqa: F401  (fixtures)

from memqa.data import download
from memqa.data.download import LOCK_NAME, TEMP_PREFIX, download_babi

pytestmark = pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")


def _fetch_then_hang(dest_dir, url, sha256, reached):
    def progress(done, total):
        if done > 0:
            reached.set()
            time.sleep(60)  # killed here, with part of the archive on disk

    download_babi(dest_dir, url=url, sha256=sha256, progress=progress)


def _extract_then_hang(dest_dir, url, sha256, reached):
    real_extract = download._extract_safely

    def extract(archive_path, staging):
        real_extract(archive_path, staging)
        reached.set()
        time.sleep(60)  # killed here, with the whole tree unpacked but not yet marked or moved

    download._extract_safely = extract
    download_babi(dest_dir, url=url, sha256=sha256)


@pytest.mark.parametrize("hang", [_fetch_then_hang, _extract_then_hang], ids=["mid-fetch", "mid-extract"])
def test_sigkill_mid_download_leaves_no_tree_and_a_retry_succeeds(archive, dest, hang):  # noqa: F811
    path, sha256 = archive
    context = multiprocessing.get_context("fork")
    reached = context.Event()
    child = context.Process(target=hang, args=(dest, str(path), sha256, reached))
    child.start()
    assert reached.wait(timeout=30), "the download never reached the point to kill it at"
    os.kill(child.pid, signal.SIGKILL)
    child.join(timeout=10)
    assert child.exitcode == -signal.SIGKILL
    leftovers = sorted(entry.name for entry in dest.iterdir())
    assert BABI_ARCHIVE_ROOT not in leftovers  # none, not half a dataset
    assert any(name.startswith(TEMP_PREFIX) for name in leftovers) and LOCK_NAME in leftovers
    assert_complete(download_babi(dest, url=str(path), sha256=sha256), sha256)
    assert sorted(entry.name for entry in dest.iterdir()) == ["README.md", BABI_ARCHIVE_ROOT]
