"""Write outputs so that a failure never leaves a half-written one, and say early and in one line when an output
cannot be written at all.

- `atomic_path` / `atomic_open`: write a temporary file beside the target, then rename it into place;
  `atomic_paths`: several files, all renamed only once every one is written.
- `temp_folder` + `default_permissions`: a folder output (a checkpoint) built beside its target, then renamed; it
  gets the permissions of an ordinary new folder and files (0777 / 0666 less the umask), not mkdtemp's 0700.
- `check_output`: before any work, refuse an output path under a regular file, in a folder this process cannot
  write, or of the wrong kind (a folder where a file goes, and the other way round).
- `os_error_message`: the one-line message for an `OSError` the file system raised about a path (the command line
  prints it instead of a traceback).
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import cast

from ..errors import MotionsynthError

__all__ = ["atomic_path", "atomic_open", "atomic_paths", "temp_folder", "default_permissions", "check_output",
           "os_error_message", "short_path"]


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path in the target's folder; on success it replaces ``path``, on error it is removed (and
    so are the folders above it that this call made).

    The temporary name keeps the target's suffix so that writers choosing a format by extension still work.
    """
    path = Path(path)
    made = _make_parents(path.parent)
    prefix, suffix = f".{path.stem}.", path.suffix or ".tmp"
    try:
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    except OSError as e:
        _remove_empty(made)
        _raise_as_target(e, path, lambda name: Path(name).name.startswith(prefix))
        raise
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes owner-only files; outputs get the usual permissions
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        _remove_empty(made)
        if isinstance(e, OSError):
            _raise_as_target(e, path, lambda name: name == tmp)
        raise


def _raise_as_target(e: OSError, path: Path, is_temporary) -> None:
    """Raise ``e`` as an error about ``path`` (the name the user gave) when it is about the temporary file;
    otherwise return (the caller re-raises ``e`` as it is)."""
    if e.errno is not None and e.filename is not None and is_temporary(os.fsdecode(e.filename)):
        raise OSError(e.errno, e.strerror, str(path)) from e


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs):
    """``open`` for writing, atomically (see `atomic_path`)."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as f:
        yield f


@contextlib.contextmanager
def atomic_paths(paths: Iterable[str | os.PathLike]) -> Iterator[list[Path]]:
    """`atomic_path` for several outputs written together: yields their temporaries; they are renamed into place
    only when the block succeeds, and on error all of them are removed — no output of the set is touched."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(atomic_path(p)) for p in paths]


def _make_parents(folder: Path) -> list[Path]:
    """``folder.mkdir(parents=True, exist_ok=True)``; returns the folders it made, deepest first."""
    missing = []
    while not folder.is_dir() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    made: list[Path] = []
    try:
        for f in reversed(missing):
            f.mkdir(exist_ok=True)
            made.insert(0, f)
    except BaseException:
        _remove_empty(made)
        raise
    return made


def _remove_empty(folders: list[Path]) -> None:
    for f in folders:  # deepest first; a folder something else wrote into stays
        with contextlib.suppress(OSError):
            f.rmdir()


def temp_folder(target: str | os.PathLike, tag: str = "tmp") -> Path:
    """A new, empty folder ``.NAME.TAG-XXXXXXXX`` beside ``target`` (made with its parents), with the permissions of
    an ordinary new folder, to build a folder output in before renaming it to ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{target.name}.{tag}-"
    try:
        tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
    except OSError as e:
        _raise_as_target(e, target, lambda name: Path(name).name.startswith(prefix))
        raise
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes private (0700) folders
    return tmp


def default_permissions(folder: str | os.PathLike) -> None:
    """Give ``folder``, the folders and the files in it the permissions a new folder or file gets (0777 or 0666 less
    the umask) — some writers (safetensors, mkdtemp, mkstemp) make owner-only ones."""
    umask = _umask()
    folder = Path(folder)
    for p in [folder, *folder.rglob("*")]:
        if not p.is_symlink():
            os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~umask)


# ---- outputs that cannot be written ----------------------------------------------------------------------------
def check_output(path: str | os.PathLike, folder: bool = False) -> Path:
    """Refuse, before any work, an output that cannot be written: raise `MotionsynthError` (one line naming the
    path) when ``path`` lies under a regular file, when the folder it goes into (or, for a folder output that
    exists, the folder itself) is not writable by this process (permissions, a read-only file system), or when it is
    a folder where a file goes (``folder=False``) or a file where a folder goes. Returns the path, ``~`` expanded.

    Nothing is created. What only writing can tell (a full disk) is still reported when it happens
    (`os_error_message`)."""
    path = Path(path)
    if "\0" in str(path):
        raise MotionsynthError(f"{short_path(path)!r}: a path cannot hold a NUL character")
    try:
        path = path.expanduser()
        base = _writable_base(path, folder)
    except OSError as e:
        raise MotionsynthError(os_error_message(e) or f"{short_path(path)}: {e.strerror or e}") from None
    except (RuntimeError, ValueError) as e:  # '~nosuchuser'; a path the OS refuses outright
        raise MotionsynthError(f"{short_path(path)}: not a usable output path ({e})") from None
    if not base.is_dir():
        raise MotionsynthError(f"{short_path(path)}: cannot be written: {short_path(base)} is a file, not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise MotionsynthError(f"{short_path(path)}: cannot be written: {short_path(base)} is not writable "
                               f"({'a read-only file system' if _read_only(base) else 'permission denied'})")
    return path


def _writable_base(path: Path, folder: bool) -> Path:
    """The existing folder that must be writable to write ``path``: the folder output itself when it exists, else
    the nearest existing folder above it (or the file in the way)."""
    if path.is_dir():
        if not folder:
            raise MotionsynthError(f"{short_path(path)}: is a folder; give a file name for this output")
        return path
    if path.exists() and folder:
        raise MotionsynthError(f"{short_path(path)}: exists and is not a folder; this output is a folder")
    base = path.parent
    while not base.exists() and base != base.parent:
        base = base.parent
    return base


def _read_only(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


# The file system's answers about a path given by the user (not a bug in motionsynth): permissions, a file where a
# folder belongs (or the other way round), a full or read-only disk, a name too long, a symbolic-link loop.
_PATH_ERRNOS = {errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENOSPC, errno.EROFS,
                errno.ENAMETOOLONG, errno.ELOOP, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}
# ... of which these need no path to be understood (writing to an open file gives none).
_DEVICE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


def os_error_message(e: BaseException) -> str | None:
    """One line for an `OSError` the file system raised about a path the user gave — permission denied, not a
    folder, is a folder, exists, no space left, read-only file system, file name too long, symbolic-link loop — naming
    the path; None for any other exception (a bug, to be shown in full)."""
    if not isinstance(e, OSError) or e.errno not in _PATH_ERRNOS:
        return None
    if not e.filename and e.errno not in _DEVICE_ERRNOS:
        return None
    reason = (e.strerror or os.strerror(cast(int, e.errno))).lower()  # one of _PATH_ERRNOS
    if e.errno == errno.ENOTDIR:
        reason = "a part of this path is a file, not a folder"
    elif e.errno == errno.EEXIST and isinstance(e.filename, (str, os.PathLike)) \
            and _is_file(Path(e.filename)):
        reason = "exists and is not a folder"
    if not e.filename:
        return f"{reason} (while writing an output)"
    where = short_path(e.filename) + (f" -> {short_path(e.filename2)}" if e.filename2 else "")
    return f"{where}: {reason}"


def _is_file(path: Path) -> bool:
    try:
        return path.exists() and not path.is_dir()
    except (OSError, ValueError):
        return False


def short_path(name, limit: int = 160) -> str:
    """A path for a one-line message: very long ones cut (with their length)."""
    text = os.fsdecode(name) if isinstance(name, (bytes, os.PathLike)) else str(name)
    return text if len(text) <= limit else f"{text[:limit // 2]}… ({len(text):,} characters)"
