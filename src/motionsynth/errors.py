"""The project's exceptions. The command line turns any `MotionsynthError` into a one-line message and exit code 2."""

from __future__ import annotations


class MotionsynthError(Exception):
    """Base class of every error caused by input the user gave (files, arguments, checkpoints)."""


class FormatError(MotionsynthError):
    """A file that cannot be read: names the file and, where known, the line."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None):
        where = f"{path}:{line}" if path and line else (path or (f"line {line}" if line else ""))
        super().__init__(f"{where}: {message}" if where else message)
        self.path, self.line, self.reason = path, line, message

    def __reduce__(self):  # keep path and line across process boundaries (parallel readers)
        return (type(self), (self.reason, self.path, self.line))


class ParamError(MotionsynthError):
    """A bad value of a parameter, said in the library's words: the message writes each parameter it names in
    backquotes (`` `per_label` must be at least 1``) and ``params`` lists them, so that a front end names its own
    flag or control for each (the command line: ``--per-label``, `cli.tasks.flag_error`; the editor its field)."""

    def __init__(self, message: str, *params: str):
        super().__init__(message)
        self.params = params

    def __reduce__(self):
        return (type(self), (str(self), *self.params))


class SkeletonMismatchError(MotionsynthError):
    """Motion and model (or two motions) use different skeletons."""


class InvalidMotionError(MotionsynthError, ValueError):
    """A `Motion` with values that cannot be animated: NaN or infinite rotations, positions or translations,
    zero-norm quaternions, or a frame rate that is not finite and positive. Also a ``ValueError``, so that code
    catching the shape errors of `Motion` catches these too."""
