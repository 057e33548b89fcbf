"""Settings given as text — the one KEY=VALUE parser of every command (``--set``, ``--setting``, ``--option``) —
and the one deep merge of configuration layers."""

from __future__ import annotations

import yaml

from .errors import MotionsynthError

__all__ = ["parse_value", "parse_key_values", "deep_merge"]


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
