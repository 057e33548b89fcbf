"""Settings given as text — the one KEY=VALUE parser of every command (``--set``, ``--setting``, ``--option``) —,
the one deep merge of configuration layers, and the one typed option set of a method (`Options`: defaults, help,
checks; what ``--option`` and the editor's controls are checked against and described from)."""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Any, get_args, get_type_hints

import yaml

from .errors import MotionsynthError

__all__ = ["parse_value", "parse_key_values", "deep_merge", "Options", "option"]


def parse_value(text: str):
    """A value as YAML (``[30]`` → list, ``true`` → bool), except that YAML 1.1's strings that are numbers
    (``3e-4``, ``1e-4`` without a dot) are read as the float they are."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def parse_key_values(items: list[str], flag: str, nested: bool = False) -> dict:
    """``["gaps=[30]", "lr=1e-4"]`` → ``{"gaps": [30], "lr": 0.0001}`` (`parse_value`); with ``nested``, dotted keys
    build nested dicts (``train.lr=3e-4`` → ``{"train": {"lr": 0.0003}}``). ``flag`` names the option in errors."""
    out: dict = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or (nested and "" in key.split(".")):
            example = "train.lr=3e-4" if nested else "gaps=[30]"
            raise MotionsynthError(f"{flag} {item!r}: expected {'SECTION.' if nested else ''}KEY=VALUE, e.g. "
                                   f"{flag} {example}")
        try:
            value = parse_value(text)
        except yaml.YAMLError as e:
            raise MotionsynthError(f"{flag} {item!r}: the value is not valid YAML ({str(e).splitlines()[0]})") \
                from None
        parts = key.split(".") if nested else [key]
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise MotionsynthError(f"{flag} {item!r}: {p} is set to a value and used as a section")
        node[parts[-1]] = value
    return out


def deep_merge(base: dict, new: dict) -> dict:
    """``base`` updated with ``new``, recursively for keys whose values are dicts on both sides (a new copy)."""
    out = dict(base)
    for k, v in new.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


# ---- a method's typed options ---------------------------------------------------------------------------------------
def option(default, help: str, choices: tuple | None = None, kind: str | None = None):
    """A field of an `Options` dataclass: its default, one line of help, (for a few allowed words) its choices, and
    its kind when the type does not say (``"model"``: another method, or a model to load as one)."""
    return field(default=default, metadata={"help": help, "choices": tuple(choices) if choices else None,
                                            "kind": kind})


@dataclass
class Options:
    """A method's options as a dataclass: one field per option, each made with `option` (default, help, choices).

    `build` is the one door from loose values (keyword arguments, ``--option KEY=VALUE``, the editor's controls) to
    an instance: unknown names, values of the wrong type and values outside their choices are one-line errors that
    name what is allowed; then `check` (a subclass's rules between values, e.g. ranges) runs. `describe` lists the
    options as JSON for help texts and the editor's controls. A method with no options uses `Options` itself.
    """

    def check(self) -> None:
        """Raise `MotionsynthError` for a value out of its range (subclasses; nothing to check here)."""

    @classmethod
    def build(cls, values: dict | None = None, who: str = "this method") -> "Options":
        """An instance from ``values`` (option name → value; missing ones take their defaults), checked."""
        values = dict(values or {})
        known = [f.name for f in fields(cls)]
        for key in values:
            if key not in known:
                takes = f"is not one of its options ({', '.join(known)})" if known else "— it takes no options"
                raise MotionsynthError(f"bad option for {who}: {key!r} {takes}")
        hints = get_type_hints(cls)
        for f in fields(cls):
            if f.name in values:
                _check_value(f.name, values[f.name], hints[f.name], f.metadata.get("choices"))
        out = cls(**values)
        out.check()
        return out

    @classmethod
    def describe(cls) -> list[dict]:
        """One JSON-ready entry per option: ``name``, ``type`` (int, float, bool, str, model or any), ``optional``
        (None allowed), ``default``, ``help``, ``choices`` (or None)."""
        hints = get_type_hints(cls)
        out = []
        for f in fields(cls):
            kind, optional = _kind(hints[f.name])
            kind = f.metadata.get("kind") or kind
            default = f.default if f.default is not MISSING else None
            out.append({"name": f.name, "type": kind, "optional": optional, "default": default,
                        "help": f.metadata.get("help", ""), "choices": list(f.metadata.get("choices") or []) or None})
        return out

    def to_dict(self) -> dict:
        """Every option's value (a shallow copy: option values such as another method stay as they are)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


_KINDS = {int: "int", float: "float", bool: "bool", str: "str"}


def _kind(hint) -> tuple[str, bool]:
    """A field's type hint → (its kind for `Options.describe`, whether None is allowed)."""
    args = [a for a in get_args(hint) if a is not type(None)]
    optional = len(args) < len(get_args(hint))
    base = args[0] if optional and len(args) == 1 else hint
    if base is Any:
        return "any", True
    return _KINDS.get(base, "any"), optional


def _check_value(name: str, value, hint, choices) -> None:
    """A one-line error unless ``value`` fits the option's type (an int is a float; a bool is no number) and
    choices."""
    kind, optional = _kind(hint)
    if value is None:
        if optional or kind == "any":
            return
        raise MotionsynthError(f"option {name} needs a value ({kind}), got none")
    ok = {"int": isinstance(value, int) and not isinstance(value, bool),
          "float": isinstance(value, (int, float)) and not isinstance(value, bool),
          "bool": isinstance(value, bool), "str": isinstance(value, str)}.get(kind, True)
    if not ok:
        words = {"int": "a whole number", "float": "a number", "bool": "true or false", "str": "a word"}[kind]
        raise MotionsynthError(f"option {name} must be {words}, got {value!r}")
    if choices and value not in choices:
        raise MotionsynthError(f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}")
