"""Metadata filters: the operator-dict language, validated into a small tree before anything runs.

The language is the one Chroma, Pinecone, LangChain and MongoDB users already write::

    {"package": "git"}                                  # equality by default
    {"year": {"$gte": 2020, "$lt": 2024}}               # several operators on a field: all hold
    {"$or": [{"section": 1}, {"tags": {"$in": ["vcs", "net"]}}]}
    {"$not": {"lang": "en"}}
    {"author": {"$exists": False}}

Operators: ``$eq $ne $gt $gte $lt $lte $in $nin $exists`` on a field; ``$and $or`` (a non-empty
list of filters) and ``$not`` (one filter) to combine. Keys of one dict combine with AND.

Semantics, chosen to be MongoDB's so that the same filter means the same thing everywhere:

- A list-valued field matches if *any* element matches (``{"tags": "vcs"}`` matches
  ``tags=["vcs", "net"]``).
- ``$ne`` and ``$nin`` are the negations of ``$eq`` and ``$in``: rows without the field match.
- A missing field and a JSON ``null`` are the same: the field does not exist.
- Numbers (int or float) compare with numbers, strings with strings (range operators compare
  strings lexicographically, so ISO dates work), booleans only by equality.

Validation happens twice, both before any row is read: :func:`parse_filter` checks the shape
(unknown operator, malformed nesting, depth, NaN, a huge ``$in``); binding to the stored columns
(:meth:`slimvec.search.columns.MetadataColumns.mask`) checks types against the data (a string
compared with a numeric field, a field holding mixed types, a field no vector has).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from slimvec.errors import InvalidInputError
from slimvec.validation import check_utf8

FIELD_OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists")
LOGICAL_OPERATORS = ("$and", "$or", "$not")
RANGE_OPERATORS = ("$gt", "$gte", "$lt", "$lte")
#: Deepest nesting of ``$and``/``$or``/``$not`` accepted (real filters use two or three levels;
#: the limit keeps a generated filter from exhausting the stack).
MAX_DEPTH = 32
#: ``$in``/``$nin`` lists this long or longer are refused: at that size the caller holds ids,
#: not a condition, and should pass them (``search(..., filter={"id_field": ...})`` per batch,
#: or ``delete(ids=...)``).
MAX_IN = 100_000

EXAMPLE = '{"package": "git", "year": {"$gte": 2020}}'


@dataclass(frozen=True)
class Condition:
    """``field <op> value`` with op one of eq, range, in, exists.

    ``value``: a scalar for "eq"; a tuple of scalars for "in"; a bool for "exists"; for
    "range" ``(low, low_inclusive, high, high_inclusive)`` with None for an open end (the
    range operators of one field merge into one condition, evaluated in one pass).
    """

    field: str
    op: str
    value: Any


@dataclass(frozen=True)
class And:
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    part: Node


Node = Condition | And | Or | Not


def kind_of(value: Any) -> str:
    """The filter type of a scalar: "bool", "num" or "str" (anything else: "object")."""
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return "num"
    if isinstance(value, str):
        return "str"
    return "object"


KIND_NAMES = {"bool": "booleans", "num": "numbers", "str": "strings", "object": "objects"}


def parse_filter(spec: Any) -> Node:
    """Validate a filter dict and return its tree; ``InvalidInputError`` names what is wrong."""
    if isinstance(spec, str):
        hint = ""
        try:
            if isinstance(json.loads(spec), dict):
                hint = " (this string is JSON: pass json.loads(it))"
        except ValueError:
            pass
        raise InvalidInputError(
            f"a filter is a dict, not a string{hint}: e.g. filter={EXAMPLE}; got {spec!r:.80}"
        )
    if not isinstance(spec, dict):
        raise InvalidInputError(
            f"a filter is a dict such as {EXAMPLE}; got {type(spec).__name__} {spec!r:.80}"
        )
    return _parse_dict(spec, "filter", 0)


def _parse_dict(spec: dict, where: str, depth: int) -> Node:
    if depth > MAX_DEPTH:
        raise InvalidInputError(
            f"{where}: filter nested deeper than {MAX_DEPTH} levels of $and/$or/$not; flatten it"
        )
    parts = []
    for key, value in spec.items():
        here = f"{where}[{key!r}]"
        if not isinstance(key, str) or not key:
            raise InvalidInputError(f"{where}: field names are non-empty strings, got {key!r}")
        check_utf8(key, f"{where}: the field name")  # no stored key can hold it
        if key in ("$and", "$or"):
            if not isinstance(value, (list, tuple)) or not value:
                raise InvalidInputError(
                    f"{here} takes a non-empty list of filters, e.g. "
                    f'{{"{key}": [{{"section": 1}}, {{"year": 2021}}]}}; got {value!r:.80}'
                )
            children = []
            for i, child in enumerate(value):
                if not isinstance(child, dict):
                    raise InvalidInputError(
                        f"{here}[{i}] must be a filter dict, got {type(child).__name__} "
                        f"{child!r:.60}"
                    )
                children.append(_parse_dict(child, f"{here}[{i}]", depth + 1))
            parts.append(And(tuple(children)) if key == "$and" else Or(tuple(children)))
        elif key == "$not":
            if not isinstance(value, dict):
                raise InvalidInputError(
                    f'{here} takes one filter dict, e.g. {{"$not": {{"lang": "en"}}}}; '
                    f"got {value!r:.80}"
                )
            parts.append(Not(_parse_dict(value, here, depth + 1)))
        elif key.startswith("$"):
            if key in FIELD_OPERATORS:
                raise InvalidInputError(
                    f'{here}: {key} applies to a field, e.g. {{"year": {{"{key}": 2020}}}}'
                )
            raise InvalidInputError(
                f"{here}: unknown operator {key!r}; combine filters with "
                f"{', '.join(LOGICAL_OPERATORS)}"
            )
        else:
            parts.extend(_parse_field(key, value, here))
    if len(parts) == 1:
        return parts[0]
    return And(tuple(parts))  # {} -> And(()) matches every row


def _parse_field(field: str, value: Any, where: str) -> list[Node]:
    if not isinstance(value, dict):
        if isinstance(value, (list, tuple, set)):
            raise InvalidInputError(
                f"{where}: a list is not a value to compare with; to match any of several "
                f'values write {{"{field}": {{"$in": {list(value)!r:.60}}}}}'
            )
        return [Condition(field, "eq", _scalar(value, where))]
    if not value:
        raise InvalidInputError(
            f'{where}: empty operator dict; write e.g. {{"{field}": {{"$eq": ...}}}}'
        )
    out: list[Node] = []
    bounds: dict[str, tuple[Any, bool]] = {}
    for op, operand in value.items():
        here = f"{where}[{op!r}]"
        if op not in FIELD_OPERATORS:
            if isinstance(op, str) and op.startswith("$"):
                raise InvalidInputError(
                    f"{here}: unknown operator {op!r}; use one of {', '.join(FIELD_OPERATORS)}"
                )
            raise InvalidInputError(
                f"{where}: nested fields are not supported ({op!r}); filters compare a "
                f"field with strings, numbers or booleans, e.g. "
                f'{{"{field}": {{"$eq": "value"}}}}'
            )
        if op in ("$eq", "$ne"):
            node: Node = Condition(field, "eq", _scalar(operand, here))
            out.append(Not(node) if op == "$ne" else node)
        elif op in RANGE_OPERATORS:
            scalar = _scalar(operand, here)
            if kind_of(scalar) == "bool":
                raise InvalidInputError(f"{here}: booleans compare only with $eq/$ne/$in")
            side = "low" if op in ("$gt", "$gte") else "high"
            if side in bounds:
                raise InvalidInputError(
                    f"{where}: two {'lower' if side == 'low' else 'upper'} bounds; give one of "
                    f"{'$gt/$gte' if side == 'low' else '$lt/$lte'}"
                )
            bounds[side] = (scalar, op in ("$gte", "$lte"))
        elif op in ("$in", "$nin"):
            node = Condition(field, "in", _values(operand, here))
            out.append(Not(node) if op == "$nin" else node)
        else:  # $exists
            if not isinstance(operand, (bool, np.bool_)):
                raise InvalidInputError(f"{here} takes true or false, got {operand!r:.60}")
            out.append(Condition(field, "exists", bool(operand)))
    if bounds:
        low, low_inclusive = bounds.get("low", (None, False))
        high, high_inclusive = bounds.get("high", (None, False))
        if low is not None and high is not None and kind_of(low) != kind_of(high):
            raise InvalidInputError(f"{where}: the bounds compare a number with a string")
        out.append(Condition(field, "range", (low, low_inclusive, high, high_inclusive)))
    return out


def _scalar(value: Any, where: str) -> Any:
    kind = kind_of(value)
    if kind == "object":
        if value is None:
            raise InvalidInputError(
                f"{where}: null is not a value to compare with; test presence with "
                f'{{"$exists": false}}'
            )
        raise InvalidInputError(
            f"{where}: compare with a string, number or boolean, got {type(value).__name__} "
            f"{value!r:.60}"
        )
    if kind == "num":
        if not math.isfinite(float(value)):
            raise InvalidInputError(f"{where}: {value!r} is not a finite number")
        return float(value) if isinstance(value, (float, np.floating)) else int(value)
    if kind == "str":
        check_utf8(value, where)
    return bool(value) if kind == "bool" else value


def _values(operand: Any, where: str) -> tuple:
    if isinstance(operand, (str, dict)) or not isinstance(operand, (list, tuple, set, np.ndarray)):
        raise InvalidInputError(f"{where} takes a list of values, got {operand!r:.60}")
    if len(operand) >= MAX_IN:
        raise InvalidInputError(
            f"{where}: {len(operand):,} values (the limit is {MAX_IN - 1:,}); a list this long "
            f"is a set of ids: store a shared tag in the metadata and filter on it, or split "
            f"the list"
        )
    values = tuple(_scalar(v, f"{where}[{i}]") for i, v in enumerate(operand))
    kinds = {kind_of(v) for v in values}
    if len(kinds) > 1:
        raise InvalidInputError(
            f"{where} mixes {' and '.join(sorted(KIND_NAMES[k] for k in kinds))}; a list holds "
            f"values of one type"
        )
    return values


def fields_of(node: Node) -> set[str]:
    """Every field a filter tree mentions."""
    if isinstance(node, Condition):
        return {node.field}
    if isinstance(node, Not):
        return fields_of(node.part)
    return set().union(*(fields_of(p) for p in node.parts)) if node.parts else set()
