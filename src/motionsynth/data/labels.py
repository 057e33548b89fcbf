"""Labels under left/right mirroring: ``wave-left-hand`` mirrored is ``wave-right-hand``.

A label vocabulary is ``{kind: [names]}`` (`MotionCache.label_names`, a checkpoint's ``labels.json``). The mirror map
of a vocabulary, `mirror_label_map`, gives per kind the name a mirrored take carries: it is *derived* from the names
— a name is split into tokens at every character that is not a letter or a digit (``-``, ``_``, space, ``.``…) and
every token ``left`` ↔ ``right`` and ``l`` ↔ ``r`` is swapped, case-insensitively, keeping the token's case
(``Left`` → ``Right``, ``L`` → ``R``) — and kept only when the swapped name exists in the same kind's vocabulary
(``walk-turn-left`` ↔ ``walk-turn-right``; ``walk`` stays ``walk``; ``lift-left`` without a ``lift-right`` stays
itself). Tokens inside words are never touched (``leftover``, ``rl`` stay). ``overrides`` (a dict argument, or the
``label_map`` entry of a training config's ``train.augment``) replace derived entries: ``{kind: {name: name}}``;
a mirror map is an involution, so ``{a: b}`` also sets ``b → a``, and ``{a: a}`` turns a derived pair off.

Wherever a labelled take is mirrored the map is applied (`mirror_labels`): `data.augment.Augment` swaps the mirrored
motion's labels, and `data.windows.WindowDataset` reads each augmented window's label indices from them, so every
model trained with ``p_mirror > 0`` (conditional generators, the action classifier) sees consistent labels.

One vocabulary across datasets (`unify_label`, the rule of ``docs/DATA.md``): a cache prepared from several sources
(Bandai Namco dataset 1 and 2) keeps one list of names per kind. The same name in the same kind is the same label
(``walk``, ``run``; the styles ``normal``, ``feminine``, ``active``); `LABEL_SYNONYMS` — the one table of names that
differ but mean the same — renames the others onto dataset 2's name (``masculinity`` → ``masculine``, ``old`` →
``elderly``, ``tired`` → ``exhausted``); every other name is kept as it is. The cache applies it to every take of
every source when it is prepared (one source alone included), and keeps the name the source used beside it.
"""

from __future__ import annotations

import re
from typing import Mapping

from ..errors import MotionsynthError

__all__ = ["swap_sides", "mirror_label_map", "mirror_labels", "label_indices", "LABEL_SYNONYMS", "unify_label",
           "unify_labels"]

_TOKEN = re.compile(r"[A-Za-z0-9]+")
_SWAP = {"left": "right", "right": "left", "l": "r", "r": "l"}


def _keep_case(new: str, old: str) -> str:
    if old.isupper():
        return new.upper()
    if old[:1].isupper():
        return new[:1].upper() + new[1:]
    return new


def swap_sides(name: str) -> str:
    """``name`` with every token left↔right and l↔r swapped (case-insensitive, case kept); tokens are the runs of
    letters and digits between other characters. ``"wave-left-hand"`` → ``"wave-right-hand"``, ``"turn_L"`` →
    ``"turn_R"``, ``"walk"`` → ``"walk"``."""
    return _TOKEN.sub(lambda m: _keep_case(_SWAP[m.group().lower()], m.group())
                      if m.group().lower() in _SWAP else m.group(), name)


def mirror_label_map(label_names: Mapping[str, list[str]],
                     overrides: Mapping[str, Mapping[str, str]] | None = None) -> dict[str, dict[str, str]]:
    """The mirror map of a vocabulary: ``{kind: {name: mirrored name}}`` for every name of every kind (names that
    mirror onto themselves included). See the module docstring for the derivation and ``overrides``.

    Raises:
        MotionsynthError: an override for an unknown kind or name, or one that is not ``{kind: {name: name}}``.
    """
    out: dict[str, dict[str, str]] = {}
    for kind, names in label_names.items():
        vocab = set(names)
        out[kind] = {}
        for name in names:
            swapped = swap_sides(name)
            out[kind][name] = swapped if swapped in vocab else name
    for kind, entries in (overrides or {}).items():
        if kind not in out:
            raise MotionsynthError(f"label map override: no label kind {kind!r}; the kinds are "
                                   f"{', '.join(sorted(out)) or 'none'}")
        if not isinstance(entries, Mapping):
            raise MotionsynthError(f"label map override for {kind!r} must map names to names, e.g. "
                                   f"{{{kind}: {{a: b}}}}; got {entries!r}")
        for a, b in entries.items():
            for name in (a, b):
                if name not in out[kind]:
                    raise MotionsynthError(f"label map override: the {kind} labels have no {name!r}; they are "
                                           f"{', '.join(label_names[kind])}")
            for name in (a, b):  # break the pairs a and b were in
                partner = out[kind][name]
                out[kind][partner] = partner
            out[kind][a], out[kind][b] = b, a
    return out


def mirror_labels(labels: Mapping[str, str], label_map: Mapping[str, Mapping[str, str]] | None) -> dict[str, str]:
    """A take's labels ``{kind: name}`` as the mirrored take carries them (names absent from the map are kept)."""
    label_map = label_map or {}
    return {kind: label_map.get(kind, {}).get(name, name) for kind, name in labels.items()}


def label_indices(labels: Mapping[str, str], vocabulary: Mapping[str, list[str]]) -> dict[str, int]:
    """A take's labels ``{kind: name}`` → ``{kind: index}`` for every kind of ``vocabulary`` (``{kind: [names]}``):
    the name's index in its kind's names, or -1 where the take has no label of that kind or a name the vocabulary
    lacks. The one name → index step of label encoding (training windows, the classifier's protocols); a network
    turns the indices into embedding rows or one-hot blocks (`models.common.label_rows`)."""
    return {kind: (names.index(labels[kind]) if labels.get(kind) in names else -1)
            for kind, names in vocabulary.items()}


# ---- one vocabulary across datasets --------------------------------------------------------------------------------
LABEL_SYNONYMS: dict[str, dict[str, str]] = {
    "content": {},
    "style": {"masculinity": "masculine", "old": "elderly", "tired": "exhausted"},
}
"""Per label kind, the names that mean what another dataset calls otherwise → the name the cache keeps (Bandai Namco
dataset 1's style names → dataset 2's). Left apart on purpose, as they name other motions: ``childish`` /
``youthful`` (a child's manner, a young adult's), ``walk-left`` / ``walk-right`` (side steps) and ``walk-turn-left``
/ ``walk-turn-right`` (turns while walking forward), ``dash`` / ``run``, ``bye`` / ``byebye`` / ``wave-*-hand``
(``bye`` and ``byebye`` name neither the hand nor the same gesture as dataset 2's waves). ``docs/DATA.md`` lists
every name of both datasets with the name it gets."""


def unify_label(kind: str, name: str) -> str:
    """The name a label of ``kind`` carries in a cache: its synonym's name from `LABEL_SYNONYMS`, else ``name``."""
    return LABEL_SYNONYMS.get(kind, {}).get(name, name)


def unify_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """A take's labels ``{kind: name}`` with every name through `unify_label`."""
    return {kind: unify_label(kind, name) for kind, name in labels.items()}
