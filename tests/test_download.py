"""download_babi against archives built here, served from disk or from 127.0.0.1 only."""

from __future__ import annotations

import ast
import fcntl
import hashlib
import http.server
import io
import multiprocessing
import os
import socket
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest

from memqa.data import download
from memqa.data.download import BABI_ARCHIVE_ROOT, LOCK_NAME, MARKER_NAME, TEMP_PREFIX, download_babi
from memqa.errors import DownloadError

QA1_TRAIN = "1 Mary moved to the bathroom.\n2 John went to the hallway.\n3 Where is Mary? \tbathroom\t1\n"
QA1_TEST = "1 John travelled to the hallway.\n2 Mary journeyed to the bathroom.\n3 Where is John? \thallway\t1\n"
QA1_TRAIN_NAME = f"{BABI_ARCHIVE_ROOT}/en/qa1_single-supporting-fact_train.txt"
QA1_TEST_NAME = f"{BABI_ARCHIVE_ROOT}/en/qa1_single-supporting-fact_test.txt"
FILLER_BYTES = 5 * download.CHUNK_BYTES  # incompressible, so the archive takes several reads
SERVER_DELAY_SECONDS = 0.3  # long enough for a second downloader to reach the lock


# --- building archives -------------------------------------------------------------------


def add_member(archive: tarfile.TarFile, name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"",
               linkname: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, linkname, len(data)
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    archive.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def write_archive(path: Path, extra=lambda archive: None, root: str = BABI_ARCHIVE_ROOT) -> str:
    """Write a small bAbI-shaped .tar.gz at path (extra adds members); return its sha256."""
    with tarfile.open(path, "w:gz") as archive:
        add_member(archive, root, tarfile.DIRTYPE)
        add_member(archive, f"{root}/en", tarfile.DIRTYPE)
        add_member(archive, QA1_TRAIN_NAME.replace(BABI_ARCHIVE_ROOT, root), data=QA1_TRAIN.encode())
        add_member(archive, QA1_TEST_NAME.replace(BABI_ARCHIVE_ROOT, root), data=QA1_TEST.encode())
        add_member(archive, f"{root}/en/filler.bin", data=os.urandom(FILLER_BYTES))
        extra(archive)
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def archive(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "source" / "tasks_1-20_v1-2.tar.gz"
    path.parent.mkdir()
    return path, write_archive(path)


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    (path / "README.md").write_text("downloads land here\n")
    return path


def assert_complete(tree: Path, sha256: str) -> None:
    assert tree.name == BABI_ARCHIVE_ROOT
    assert (tree.parent / QA1_TRAIN_NAME).read_text() == QA1_TRAIN
    assert (tree.parent / QA1_TEST_NAME).read_text() == QA1_TEST
    assert (tree / MARKER_NAME).read_text().strip() == sha256


def assert_untouched(dest: Path) -> None:
    """Only what the fixture put there: no tree, no temp file, no lock file."""
    assert sorted(entry.name for entry in dest.iterdir()) == ["README.md"]


# --- a local HTTP server, never another host --------------------------------------------


@pytest.fixture(autouse=True)
def local_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxies, and any connection to a host other than 127.0.0.1 fails the test."""
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(name, "*")
    real_create_connection = socket.create_connection

    def guarded(address, *args, **kwargs):
        assert address[0] == "127.0.0.1", f"test tried to reach {address}"
        return real_create_connection(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", guarded)


class Routes:
    """What the server sends for each path: (body, claimed Content-Length, delay)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[bytes, int, float]] = {}
        self.gets: list[str] = []
        self.base = ""

    def add(self, path: str, body: bytes, claimed_length: int | None = None, delay: float = 0.0) -> str:
        self.routes[path] = (body, len(body) if claimed_length is None else claimed_length, delay)
        return self.base + path


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Routes:
    routes = Routes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            routes.gets.append(self.path)
            if self.path not in routes.routes:
                self.send_error(404)
                return
            body, claimed_length, delay = routes.routes[self.path]
            self.send_response(200)
            self.send_header("Content-Length", str(claimed_length))
            self.end_headers()
            self.wfile.flush()
            time.sleep(delay)  # headers first, so a client timeout hits the body read
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.handle_error = lambda *args: None  # a client that timed out is expected here
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    routes.base = f"http://127.0.0.1:{httpd.server_address[1]}"

    def stop() -> None:
        httpd.shutdown()
        httpd.server_close()
        thread.join()

    request.addfinalizer(stop)
    return routes


# --- fetching and reuse ------------------------------------------------------------------


@pytest.mark.parametrize("as_uri", [False, True], ids=["path", "file-url"])
def test_downloads_a_local_archive_and_reports_progress(archive, dest, as_uri):
    path, sha256 = archive
    calls: list[tuple[int, int | None]] = []
    tree = download_babi(dest, url=path.as_uri() if as_uri else str(path), sha256=sha256,
                         progress=lambda done, total: calls.append((done, total)))
    assert_complete(tree, sha256)
    size = path.stat().st_size
    assert len(calls) > 2 and calls[0] == (0, size) and calls[-1] == (size, size)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert sorted(entry.name for entry in dest.iterdir()) == ["README.md", BABI_ARCHIVE_ROOT]


def test_downloads_over_http_then_reuses_the_tree(archive, dest, server):
    path, sha256 = archive
    url = server.add("/babi.tar.gz", path.read_bytes())
    calls = []
    tree = download_babi(dest, url=url, sha256=sha256, progress=lambda *call: calls.append(call))
    assert_complete(tree, sha256)
    assert calls[-1] == (path.stat().st_size, path.stat().st_size)
    assert download_babi(dest, url=url, sha256=sha256) == tree
    assert download_babi(dest, url=str(dest / "nowhere.tar.gz"), sha256=sha256) == tree
    assert server.gets == ["/babi.tar.gz"]
    assert download_babi(dest, url=url, sha256=sha256, force=True) == tree
    assert server.gets == ["/babi.tar.gz"] * 2
    assert_complete(tree, sha256)


def test_sha256_none_skips_the_check_and_accepts_any_complete_tree(archive, dest):
    path, sha256 = archive
    tree = download_babi(dest, url=str(path), sha256=None)
    assert_complete(tree, sha256)  # the marker records the archive's actual hash
    assert download_babi(dest, url=str(dest / "nowhere"), sha256=None) == tree


def test_a_tree_marked_with_another_hash_is_replaced(archive, dest):
    path, sha256 = archive
    tree = download_babi(dest, url=str(path), sha256=sha256)
    (tree / MARKER_NAME).write_text("0" * 64 + "\n")
    assert download_babi(dest, url=str(path), sha256=sha256) == tree
    assert_complete(tree, sha256)


def test_a_tree_not_made_by_memqa_is_kept_unless_forced(archive, dest):
    path, sha256 = archive
    (dest / BABI_ARCHIVE_ROOT).mkdir()
    (dest / BABI_ARCHIVE_ROOT / "mine.txt").write_text("hand-made\n")
    with pytest.raises(DownloadError, match="not made by memqa"):
        download_babi(dest, url=str(path), sha256=sha256)
    assert (dest / BABI_ARCHIVE_ROOT / "mine.txt").exists()
    tree = download_babi(dest, url=str(path), sha256=sha256, force=True)
    assert_complete(tree, sha256)
    assert not (tree / "mine.txt").exists()


# --- verification and safe extraction ----------------------------------------------------


def test_wrong_sha256_names_both_hashes_and_leaves_nothing(archive, dest):
    path, sha256 = archive
    wrong = "ab" * 32
    with pytest.raises(DownloadError) as caught:
        download_babi(dest, url=str(path), sha256=wrong)
    message = str(caught.value)
    assert wrong in message and sha256 in message and "\n" not in message
    assert_untouched(dest)


def symlink_escape(archive: tarfile.TarFile, outside: Path) -> None:
    add_member(archive, f"{BABI_ARCHIVE_ROOT}/escape", tarfile.SYMTYPE, linkname=str(outside))
    add_member(archive, f"{BABI_ARCHIVE_ROOT}/escape/evil.txt", data=b"pwned")


UNSAFE_MEMBERS = {
    "parent": lambda archive, outside: add_member(archive, "../evil.txt", data=b"pwned"),
    "nested-parent": lambda archive, outside: add_member(
        archive, f"{BABI_ARCHIVE_ROOT}/../../../evil.txt", data=b"pwned"),
    "absolute": lambda archive, outside: add_member(archive, str(outside / "evil.txt"), data=b"pwned"),
    "symlink": symlink_escape,
    "hardlink": lambda archive, outside: add_member(
        archive, f"{BABI_ARCHIVE_ROOT}/evil.txt", tarfile.LNKTYPE, linkname="../../evil.txt"),
    "device": lambda archive, outside: add_member(archive, f"{BABI_ARCHIVE_ROOT}/null", tarfile.CHRTYPE),
}


@pytest.mark.parametrize("kind", sorted(UNSAFE_MEMBERS))
def test_unsafe_members_are_rejected_and_nothing_is_written(tmp_path, dest, kind):
    outside = tmp_path / "outside"
    outside.mkdir()
    path = tmp_path / "evil.tar.gz"
    sha256 = write_archive(path, extra=lambda archive: UNSAFE_MEMBERS[kind](archive, outside))
    with pytest.raises(DownloadError, match="refusing to unpack"):
        download_babi(dest, url=str(path), sha256=sha256)
    assert_untouched(dest)
    assert list(outside.iterdir()) == []
    assert not (tmp_path / "evil.txt").exists()
    assert not (tmp_path.parent / "evil.txt").exists()


@pytest.mark.parametrize("body", [b"this is not a gzip file", b"\x1f\x8b\x08\x00garbage"], ids=["text", "bad-gzip"])
def test_a_corrupt_archive_is_a_download_error(tmp_path, dest, body):
    path = tmp_path / "corrupt.tar.gz"
    path.write_bytes(body)
    with pytest.raises(DownloadError, match="not a valid .tar.gz"):
        download_babi(dest, url=str(path), sha256=hashlib.sha256(body).hexdigest())
    assert_untouched(dest)


def test_an_archive_without_the_root_folder_is_a_download_error(tmp_path, dest):
    path = tmp_path / "other.tar.gz"
    with pytest.raises(DownloadError, match=f"no {BABI_ARCHIVE_ROOT}/ folder"):
        download_babi(dest, url=str(path), sha256=write_archive(path, root="something_else"))
    assert_untouched(dest)


# --- network and source errors -----------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def assert_fetch_error(dest: Path, url: str, reason: str) -> None:
    with pytest.raises(DownloadError) as caught:
        download_babi(dest, url=url, sha256=None)
    message = str(caught.value)
    assert reason in message and "MEMQA_BABI_DIR=" in message and "\n" not in message, message
    assert_untouched(dest)


def test_connection_refused(dest):
    assert_fetch_error(dest, f"http://127.0.0.1:{closed_port()}/babi.tar.gz", "refused")


def test_http_error(dest, server):
    assert_fetch_error(dest, server.base + "/missing.tar.gz", "HTTP 404")


def test_timeout(dest, server, monkeypatch, archive):
    monkeypatch.setattr(download, "NETWORK_TIMEOUT_SECONDS", 0.1)
    url = server.add("/slow.tar.gz", archive[0].read_bytes(), delay=0.5)
    assert_fetch_error(dest, url, "timed out")


def test_a_truncated_response(dest, server, archive):
    body = archive[0].read_bytes()
    url = server.add("/short.tar.gz", body, claimed_length=len(body) + 1000)
    assert_fetch_error(dest, url, f"stopped after {len(body)} of {len(body) + 1000} bytes")


def test_a_missing_file_and_an_unsupported_scheme(dest, tmp_path):
    assert_fetch_error(dest, str(tmp_path / "missing.tar.gz"), "No such file")
    assert_fetch_error(dest, "ftp://127.0.0.1/babi.tar.gz", "unsupported URL scheme")


# --- concurrency and interruption --------------------------------------------------------


def test_two_threads_at_once_fetch_once(archive, dest, server):
    path, sha256 = archive
    url = server.add("/babi.tar.gz", path.read_bytes(), delay=SERVER_DELAY_SECONDS)
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(download_babi(dest, url=url, sha256=sha256)))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(results) == 2 and results[0] == results[1]
    assert_complete(results[0], sha256)
    assert server.gets == ["/babi.tar.gz"]
    assert not (dest / LOCK_NAME).exists()


def download_in_child(dest: Path, url: str, sha256: str, result: Path, started=None, go=None) -> None:
    """Child process body: download, optionally pausing mid-fetch; record fetched/cached."""
    fetched = []

    def progress(done: int, total: int | None) -> None:
        fetched.append(done)
        if started is not None and done > 0 and not started.is_set():
            started.set()
            go.wait(timeout=10)

    download_babi(dest, url=url, sha256=sha256, progress=progress)
    result.write_text("fetched" if fetched else "cached")


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_a_second_process_waits_for_the_lock_then_reuses_the_tree(archive, dest, tmp_path):
    path, sha256 = archive
    context = multiprocessing.get_context("fork")
    started, go = context.Event(), context.Event()
    first = context.Process(target=download_in_child,
                            args=(dest, str(path), sha256, tmp_path / "first", started, go))
    second = context.Process(target=download_in_child, args=(dest, str(path), sha256, tmp_path / "second"))
    first.start()
    assert started.wait(timeout=10)
    second.start()
    time.sleep(SERVER_DELAY_SECONDS)
    assert second.is_alive() and not (dest / BABI_ARCHIVE_ROOT).exists()  # blocked on the lock
    go.set()
    for process in (first, second):
        process.join(timeout=10)
        assert process.exitcode == 0
    assert (tmp_path / "first").read_text() == "fetched"
    assert (tmp_path / "second").read_text() == "cached"
    assert_complete(dest / BABI_ARCHIVE_ROOT, sha256)


def test_interrupted_mid_download_leaves_no_tree_and_a_retry_succeeds(archive, dest):
    path, sha256 = archive
    calls = []

    def interrupt_halfway(done: int, total: int | None) -> None:
        calls.append(done)
        if total and done >= total // 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        download_babi(dest, url=str(path), sha256=sha256, progress=interrupt_halfway)
    assert 0 < calls[-1] < path.stat().st_size
    assert_untouched(dest)
    assert_complete(download_babi(dest, url=str(path), sha256=sha256), sha256)


def test_interrupted_while_moving_into_place_leaves_no_tree(archive, dest, monkeypatch):
    path, sha256 = archive
    real_move = download._move_into_place

    def interrupted(*args) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(download, "_move_into_place", interrupted)
    with pytest.raises(KeyboardInterrupt):
        download_babi(dest, url=str(path), sha256=sha256)
    assert_untouched(dest)
    monkeypatch.setattr(download, "_move_into_place", real_move)
    assert_complete(download_babi(dest, url=str(path), sha256=sha256), sha256)


def test_leftovers_of_a_killed_run_are_cleaned_up(archive, dest):
    path, sha256 = archive
    (dest / f"{TEMP_PREFIX}archive-x.part").write_bytes(b"half an archive")
    (dest / f"{TEMP_PREFIX}extract-x" / BABI_ARCHIVE_ROOT).mkdir(parents=True)
    (dest / LOCK_NAME).touch()  # a killed holder leaves its lock file, but not its flock
    tree = download_babi(dest, url=str(path), sha256=sha256)
    assert_complete(tree, sha256)
    assert sorted(entry.name for entry in dest.iterdir()) == ["README.md", BABI_ARCHIVE_ROOT]


def test_a_download_waits_while_the_lock_is_held(archive, dest):
    path, sha256 = archive
    with open(dest / LOCK_NAME, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        worker = threading.Thread(target=download_babi, args=(dest,), kwargs={"url": str(path), "sha256": sha256})
        worker.start()
        time.sleep(SERVER_DELAY_SECONDS)
        assert worker.is_alive() and not (dest / BABI_ARCHIVE_ROOT).exists()
    worker.join(timeout=10)
    assert_complete(dest / BABI_ARCHIVE_ROOT, sha256)


def test_the_module_does_not_import_torch():
    tree = ast.parse(Path(download.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert "torch" not in imported and imported <= {"__future__", "memqa", *sys.stdlib_module_names}
