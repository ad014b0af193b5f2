"""Fetch, verify and safely unpack the bAbI tasks archive (Weston et al. 2015).

Standard library only, and no torch: the CLI imports this module at start-up.

`download_babi` runs these steps, each a small function below:
lock dest_dir -> remove leftovers of a killed run -> stream the archive into a temp
file while hashing it -> check the sha256 -> check every member -> extract into a temp
folder -> write the completion marker -> `os.replace` the tree into place.
An exception or a kill at any step leaves either the complete, verified tree or no
tree at all; the only leftovers are temp files named with TEMP_PREFIX, which the next
call removes while it holds the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Callable, Iterator

from memqa.errors import DownloadError

# Official source: the bAbI project page of Weston et al. 2015, "Towards AI-Complete
# Question Answering: A Set of Prerequisite Toy Tasks" (v1.2 of the 20 tasks).
BABI_URL = "http://www.thespermwhale.com/jaseweston/babi/tasks_1-20_v1-2.tar.gz"
BABI_SHA256 = "0364ebde659f14d11bc21744516c5ec49d3d06cb692733f66680771244998898"
BABI_ARCHIVE_ROOT = "tasks_1-20_v1-2"  # the folder the archive unpacks to
BABI_ARCHIVE_NAME = "tasks_1-20_v1-2.tar.gz"

MARKER_NAME = ".memqa-complete"  # written last inside the tree; holds the archive's sha256
LOCK_NAME = ".babi-download.lock"  # flock'd while a download runs; removed when it ends
TEMP_PREFIX = ".memqa-babi-"  # every temp file or folder made in dest_dir starts with this
CHUNK_BYTES = 64 * 1024  # read size while streaming: 8x io.DEFAULT_BUFFER_SIZE, few progress calls
NETWORK_TIMEOUT_SECONDS = 30.0  # per blocking socket operation (urlopen's timeout); a judgement call
URL_SCHEMES = ("http", "https", "file")  # anything else with "://" is refused

MANUAL_HINT = (
    f"download {BABI_ARCHIVE_NAME} by hand from {BABI_URL}, unpack it "
    f"and set MEMQA_BABI_DIR=/path/to/{BABI_ARCHIVE_ROOT}"
)

ProgressCallback = Callable[[int, int | None], None]


def download_babi(
    dest_dir: Path,
    *,
    url: str = BABI_URL,
    sha256: str | None = BABI_SHA256,
    progress: ProgressCallback | None = None,
    force: bool = False,
) -> Path:
    """Fetch the archive at `url` (http(s)://, file:// or a plain local path), check its
    sha256 (skipped when sha256 is None), unpack it safely into dest_dir/BABI_ARCHIVE_ROOT
    and return that path.

    progress(bytes_done, total_bytes_or_None) is called as bytes arrive. A tree already
    complete (its marker file names the expected sha256) is returned without fetching,
    unless force=True. Concurrent calls on one dest_dir take turns on a file lock; the
    later ones find the complete tree and return it. Raises DownloadError on failure.
    """
    dest_dir = Path(dest_dir)
    final_dir = dest_dir / BABI_ARCHIVE_ROOT
    expected = sha256.strip().lower() if sha256 is not None else None
    if not force and _is_complete(final_dir, expected):
        return final_dir  # no lock needed: the tree only ever appears whole
    with _exclusive_lock(dest_dir):
        _remove_leftovers(dest_dir)
        if not force and _is_complete(final_dir, expected):
            return final_dir  # another process finished it while we waited
        _refuse_foreign_tree(final_dir, force)
        with _temporary_archive(dest_dir) as archive_path:
            actual = _fetch(os.fspath(url), archive_path, progress)
            _verify_sha256(os.fspath(url), expected, actual)
            _install(archive_path, dest_dir, final_dir, actual)
    return final_dir


def _is_complete(final_dir: Path, expected: str | None) -> bool:
    """True when final_dir holds a marker naming `expected` (any marker when None)."""
    try:
        recorded = (final_dir / MARKER_NAME).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return False
    return bool(recorded) and (expected is None or recorded == expected)


def _refuse_foreign_tree(final_dir: Path, force: bool) -> None:
    """Never delete a tree memqa did not make (no marker) unless asked to."""
    has_tree = final_dir.exists() or final_dir.is_symlink()
    if has_tree and not force and not (final_dir / MARKER_NAME).exists():
        raise DownloadError(
            f"{final_dir} exists but was not made by memqa's download (no {MARKER_NAME}); "
            f"use it with MEMQA_BABI_DIR={final_dir}, or remove it (or force) to download again"
        )


@contextlib.contextmanager
def _exclusive_lock(dest_dir: Path) -> Iterator[None]:
    """Hold an exclusive flock on dest_dir/LOCK_NAME; remove the lock file on the way out."""
    lock_path = dest_dir / LOCK_NAME
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
        descriptor = _acquire_lock(lock_path)
    except OSError as error:
        raise DownloadError(
            f"cannot write to {dest_dir}: {_reason(error)}; choose a writable folder, or {MANUAL_HINT}"
        ) from error
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock_path)  # while still held, so waiters see it gone (see _acquire_lock)
        os.close(descriptor)  # closing the descriptor releases the flock


def _acquire_lock(lock_path: Path) -> int:
    """Open and flock lock_path, blocking. The previous holder unlinks the file before it
    lets go, so a lock won on an unlinked file is stale: open the path again and retry."""
    while True:
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            if _is_same_file(descriptor, lock_path):
                return descriptor
        except BaseException:
            os.close(descriptor)
            raise
        os.close(descriptor)


def _is_same_file(descriptor: int, path: Path) -> bool:
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(descriptor)
    return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)


def _remove_leftovers(dest_dir: Path) -> None:
    """Delete temp files and folders a killed run left behind (call with the lock held)."""
    for entry in dest_dir.iterdir():
        if not entry.name.startswith(TEMP_PREFIX):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


@contextlib.contextmanager
def _temporary_archive(dest_dir: Path) -> Iterator[Path]:
    """A fresh temp file path inside dest_dir, removed on exit whatever happens."""
    descriptor, name = tempfile.mkstemp(prefix=TEMP_PREFIX + "archive-", suffix=".part", dir=dest_dir)
    os.close(descriptor)
    try:
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


def _fetch(url: str, archive_path: Path, progress: ProgressCallback | None) -> str:
    """Stream `url` into archive_path; return the sha256 hex digest of the bytes."""
    try:
        with _open_source(url) as (source, total), open(archive_path, "wb") as sink:
            return _copy_hashing(url, source, sink, total, progress)
    except (OSError, http.client.HTTPException, ValueError) as error:
        if isinstance(error, urllib.error.HTTPError):
            error.close()  # it holds the open response; __cause__ would keep it alive
        raise DownloadError(f"could not download {url}: {_reason(error)}; {MANUAL_HINT}") from error


@contextlib.contextmanager
def _open_source(url: str) -> Iterator[tuple[BinaryIO, int | None]]:
    """Yield (readable stream, total size or None) for a URL or a plain local path."""
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme in URL_SCHEMES:
        with urllib.request.urlopen(url, timeout=NETWORK_TIMEOUT_SECONDS) as response:
            yield response, _content_length(response)
    elif "://" in url:
        raise ValueError(f"unsupported URL scheme {scheme!r} (use http, https, file or a local path)")
    else:
        with open(url, "rb") as stream:
            yield stream, os.fstat(stream.fileno()).st_size


def _content_length(response: object) -> int | None:
    header = getattr(response, "headers", {}).get("Content-Length")
    try:
        length = int(header)
    except (TypeError, ValueError):
        return None
    return length if length >= 0 else None


def _copy_hashing(
    url: str, source: BinaryIO, sink: BinaryIO, total: int | None, progress: ProgressCallback | None
) -> str:
    """Copy source to sink in CHUNK_BYTES pieces, hashing and reporting progress."""
    digest = hashlib.sha256()
    done = 0
    if progress is not None:
        progress(done, total)
    while chunk := source.read(CHUNK_BYTES):
        sink.write(chunk)
        digest.update(chunk)
        done += len(chunk)
        if progress is not None:
            progress(done, total)
    if total is not None and done != total:
        raise DownloadError(
            f"download of {url} stopped after {done} of {total} bytes; try again, or {MANUAL_HINT}"
        )
    return digest.hexdigest()


def _reason(error: BaseException) -> str:
    """The human part of a network or file error, without the exception class."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        reason = error.reason
        return getattr(reason, "strerror", None) or str(reason)
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


def _verify_sha256(url: str, expected: str | None, actual: str) -> None:
    if expected is not None and actual != expected:
        raise DownloadError(
            f"sha256 mismatch for {url}: expected {expected}, got {actual}; "
            f"the file is corrupt or has changed; try again, or {MANUAL_HINT}"
        )


def _install(archive_path: Path, dest_dir: Path, final_dir: Path, digest: str) -> None:
    """Extract into a temp folder in dest_dir, mark it complete, move it into place."""
    staging = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX + "extract-", dir=dest_dir))
    try:
        _extract_safely(archive_path, staging)
        tree = staging / BABI_ARCHIVE_ROOT
        if not tree.is_dir() or tree.is_symlink():
            raise DownloadError(
                f"the archive has no {BABI_ARCHIVE_ROOT}/ folder; check the URL, or {MANUAL_HINT}"
            )
        (tree / MARKER_NAME).write_text(digest + "\n", encoding="ascii")  # written last
        _move_into_place(tree, final_dir, dest_dir)
    except OSError as error:
        raise DownloadError(
            f"could not unpack into {dest_dir}: {_reason(error)}; check free space and permissions"
        ) from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _move_into_place(tree: Path, final_dir: Path, dest_dir: Path) -> None:
    """Atomically rename tree to final_dir, first moving any old tree aside."""
    if not (final_dir.exists() or final_dir.is_symlink()):
        os.replace(tree, final_dir)
        return
    trash = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX + "old-", dir=dest_dir))
    try:
        os.replace(final_dir, trash / BABI_ARCHIVE_ROOT)
        os.replace(tree, final_dir)
    finally:
        shutil.rmtree(trash, ignore_errors=True)


def _extract_safely(archive_path: Path, staging: Path) -> None:
    """Check every member first, then extract them all under staging."""
    try:
        with tarfile.open(archive_path, "r:gz") as archive:
            members = archive.getmembers()
            for member in members:
                _check_member(member)
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4 / 3.10.12: a second guard
                archive.extractall(staging, members=members, filter="data")
            else:
                archive.extractall(staging, members=members)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise DownloadError(
            f"the downloaded file is not a valid .tar.gz archive ({error}); check the URL, or {MANUAL_HINT}"
        ) from error


def _check_member(member: tarfile.TarInfo) -> None:
    """Allow only regular files and folders with relative paths that stay inside."""
    path = PurePosixPath(member.name)
    if not (member.isfile() or member.isdir()):
        problem = f"is a {_member_kind(member)}; only regular files and folders are allowed"
    elif path.is_absolute():
        problem = "has an absolute path"
    elif ".." in path.parts:
        problem = "has a '..' component that would escape the target folder"
    else:
        return
    raise DownloadError(
        f"refusing to unpack archive member {member.name!r}: it {problem}; "
        f"this is not the bAbI archive, check the URL, or {MANUAL_HINT}"
    )


def _member_kind(member: tarfile.TarInfo) -> str:
    if member.issym():
        return f"symbolic link to {member.linkname!r}"
    if member.islnk():
        return f"hard link to {member.linkname!r}"
    if member.ischr() or member.isblk():
        return "device file"
    if member.isfifo():
        return "FIFO"
    return "special member"
