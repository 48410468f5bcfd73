"""What kind of value a dataclass field holds, read from its type hint (shared by loading and overrides)."""

from __future__ import annotations

import collections.abc
import types
import typing
from collections.abc import Mapping
from typing import Any

from .settings import DomainSpec


def strip_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def is_tuple(tp: Any) -> bool:
    return typing.get_origin(tp) is tuple


def is_mapping(tp: Any) -> bool:
    return typing.get_origin(tp) in (dict, Mapping, collections.abc.Mapping) or tp in (dict, Mapping)


def is_domain_tuple(tp: Any) -> bool:
    return is_tuple(tp) and typing.get_args(tp)[0] is DomainSpec
