"""Takes chosen by their labels: a label filter ``{kind: [glob patterns]}`` (`fnmatch`, case-sensitive), e.g.
``{"content": ["run", "raise-up-*"]}`` — the actions a training run holds out (``train.hold_out``) and the actions the
harness scores (``motionsynth bench --only``): the unseen-actions protocol.

A take matches a kind when its label of that kind matches one of the kind's patterns. ``include`` keeps the takes
that match *every* kind it names; ``exclude`` drops the takes that match *any* kind it names. A filter is checked
against the vocabulary (`MotionCache.label_names`): an unknown kind, or a pattern that matches no name of its kind, is
a `MotionsynthError` — a typo never silently selects nothing (or holds nothing out).
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from ..errors import MotionsynthError

__all__ = ["check_label_filter", "matches", "select_takes"]


def check_label_filter(filt: dict | None, vocab: dict[str, list[str]], what: str = "label filter") -> dict:
    """``filt`` as ``{kind: [patterns]}`` (a string value is a comma-separated list: ``"run,raise-up-*"``), checked
    against ``vocab`` (``{kind: [names]}``); None or ``{}`` → ``{}``. ``what`` names the filter in errors."""
    out: dict[str, list[str]] = {}
    if not filt:
        return out
    if not isinstance(filt, dict):
        raise MotionsynthError(f"{what}: expected {{kind: [patterns]}}, e.g. {{content: [run, raise-up-*]}}; "
                               f"got {filt!r}")
    for kind, pats in filt.items():
        if kind not in vocab:
            raise MotionsynthError(f"{what}: unknown label kind {kind!r}; kinds: {', '.join(vocab) or 'none'}")
        pats = [p.strip() for p in pats.split(",")] if isinstance(pats, str) else pats
        if not isinstance(pats, list) or not pats or not all(isinstance(p, str) and p for p in pats):
            raise MotionsynthError(f"{what}: {kind} needs a list of name patterns, got {pats!r}")
        for p in pats:
            if not any(fnmatchcase(n, p) for n in vocab[kind]):
                raise MotionsynthError(f"{what}: {kind} pattern {p!r} matches no {kind} label; names: "
                                       f"{', '.join(vocab[kind])}")
        out[str(kind)] = list(pats)
    return out


def matches(name: str | None, patterns: list[str]) -> bool:
    """Whether a label ``name`` (None: the take has none) matches one of ``patterns``."""
    return name is not None and any(fnmatchcase(name, p) for p in patterns)


def select_takes(cache, split: str, include: dict | None = None, exclude: dict | None = None) -> list[int]:
    """Indices of the takes of ``split`` that match ``include`` (every kind) and not ``exclude`` (any kind);
    both checked with `check_label_filter` against ``cache.label_names``."""
    if not include and not exclude:
        return list(cache.split(split))
    vocab = dict(cache.label_names)
    inc = check_label_filter(include, vocab, "include")
    exc = check_label_filter(exclude, vocab, "exclude")
    out = []
    for i in cache.split(split):
        labels = cache.takes[i].labels
        if all(matches(labels.get(k), p) for k, p in inc.items()) and \
                not any(matches(labels.get(k), p) for k, p in exc.items()):
            out.append(i)
    return out
