"""Lambda event filtering (``FilterCriteria``) by AWS's rules, for DynamoDB stream records. Pure.

Lambda uses EventBridge's pattern syntax, restricted to the operators its own guide lists
(AWS Lambda developer guide, "Control which events Lambda sends to your function", section
"Filter rule syntax"). The rules implemented here:

* A mapping has up to 5 filters; a record is delivered when it matches any of them (OR).
  No filters (or ``FilterCriteria = {}``) delivers everything.
* "DynamoDB event source mappings only support filtering on the `dynamodb` key" (guide,
  "Using event filtering with a DynamoDB event source"): a pattern of a mapping whose top-level
  key is anything else (``eventName``, ``awsRegion``, ``$or``, ...) is rejected. Older pages,
  CDK examples and the blog filter on ``eventName``; we take the stricter current wording.
* Inside a pattern, every field is required (AND) and must exist in the record, unless its
  rule is ``{"exists": false}``. Values listed for one field are alternatives (OR).
* Fields are leaves of the record's JSON: an object is never a value, so ``exists`` on an
  intermediate node (``"NewImage": {"type": [{"exists": true}]}``) never matches, as AWS
  documents for DynamoDB. An array in the record matches when any element matches.
* Matching is exact and by string: ``"300"`` and ``"300.0"`` differ; numbers in a pattern
  match JSON numbers of the same representation.
* Operators (``LAMBDA_OPERATORS``, the guide's table): equals, null ``[null]``, empty
  ``[""]``, ``equals-ignore-case``, ``anything-but`` (a value or a list of values),
  ``numeric`` (``=``, ``<``, ``<=``, ``>``, ``>=``, two-sided ranges), ``exists``,
  ``prefix``, ``suffix`` and ``$or`` (inside ``dynamodb``). EventBridge's other operators
  (``wildcard``, ``cidr``, ``anything-but`` with ``prefix``/``suffix``/``wildcard``/
  ``equals-ignore-case``, ``prefix``/``suffix`` with ``equals-ignore-case``) are not in
  Lambda's documentation and are rejected. ``numeric`` also compares DynamoDB ``N`` strings
  (AWS documents numeric ranges on ``N``), nothing else that is a string.

Patterns are checked when compiled (``PatternError``), as Lambda rejects an invalid pattern
when the mapping is created or updated.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_FILTERS = 5
MAX_PATTERN_LENGTH = 4096
#: The one top-level key a DynamoDB mapping's pattern may name.
DYNAMODB_KEY = "dynamodb"
DYNAMODB_KEY_ONLY = (
    "DynamoDB event source mappings only support filtering on the `dynamodb` key "
    '(AWS Lambda developer guide, "Using event filtering with a DynamoDB event source")'
)
#: The operators of the Lambda guide's filter rule table (besides plain values, null and "").
LAMBDA_OPERATORS = ("equals-ignore-case", "anything-but", "numeric", "exists", "prefix", "suffix")

Path = tuple[str, ...]
FlatRecord = dict[Path, list[Any]]


class PatternError(ValueError):
    """An invalid filter pattern or filter criteria (Lambda's InvalidParameterValueException)."""


# --- rules -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    """One alternative in a field's list: ``kind`` names the operator."""

    kind: str
    value: Any = None
    # For anything-but: the inner rules whose match excludes a value.
    inner: tuple[Rule, ...] = ()
    # For numeric: ((op, bound), ...).
    bounds: tuple[tuple[str, float], ...] = ()

    def matches(self, value: Any, leaf_key: str) -> bool:
        kind = self.kind
        if kind == "equals":
            return _same_json(self.value, value)
        if kind == "prefix":
            return isinstance(value, str) and value.startswith(self.value)
        if kind == "suffix":
            return isinstance(value, str) and value.endswith(self.value)
        if kind == "equals-ignore-case":
            return isinstance(value, str) and value.casefold() == self.value
        if kind == "numeric":
            number = _as_number(value, leaf_key)
            return number is not None and all(_compare(number, op, b) for op, b in self.bounds)
        if kind == "anything-but":
            return not any(rule.matches(value, leaf_key) for rule in self.inner)
        raise AssertionError(kind)  # pragma: no cover - compile() only builds known kinds


def _same_json(expected: Any, actual: Any) -> bool:
    # Exact, representation-based equality: True is not 1, 300 is not 300.0.
    if isinstance(expected, str) or expected is None or isinstance(expected, bool):
        return type(actual) is type(expected) and actual == expected
    if isinstance(actual, bool) or not isinstance(actual, int | float):
        return False
    return json.dumps(expected) == json.dumps(actual)


def _as_number(value: Any, leaf_key: str) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    # DynamoDB numbers travel as strings ({"N": "42"}, {"NS": ["1", "2"]}).
    if isinstance(value, str) and leaf_key in ("N", "NS"):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _compare(number: float, op: str, bound: float) -> bool:
    if op == "=":
        return number == bound
    if op == "<":
        return number < bound
    if op == "<=":
        return number <= bound
    if op == ">":
        return number > bound
    return number >= bound


# --- patterns ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldTest:
    path: Path
    rules: tuple[Rule, ...]
    # exists:true / exists:false alternatives for this field, if any.
    exists: tuple[bool, ...] = ()

    def matches(self, flat: FlatRecord) -> bool:
        values = flat.get(self.path)
        present = values is not None
        if present in self.exists:
            return True
        if not present:
            return False
        leaf_key = self.path[-1]
        return any(rule.matches(v, leaf_key) for rule in self.rules for v in values or ())


@dataclass(frozen=True, slots=True)
class Pattern:
    """One filter: alternatives (from ``$or``), each a conjunction of field tests."""

    source: str
    alternatives: tuple[tuple[FieldTest, ...], ...]
    top_level_keys: tuple[str, ...] = ()

    def matches(self, flat: FlatRecord) -> bool:
        return any(all(test.matches(flat) for test in alt) for alt in self.alternatives)


@dataclass(frozen=True, slots=True)
class CompiledFilters:
    patterns: tuple[Pattern, ...] = ()

    def matches(self, record: Mapping[str, Any]) -> bool:
        if not self.patterns:
            return True
        flat = flatten(record)
        return any(pattern.matches(flat) for pattern in self.patterns)


NO_FILTERS = CompiledFilters()


def compile_filter_criteria(criteria: Mapping[str, Any] | None) -> CompiledFilters:
    """``FilterCriteria`` as the Lambda API takes it: ``{"Filters": [{"Pattern": "..."}]}``."""
    if not criteria:
        return NO_FILTERS
    if not isinstance(criteria, Mapping):
        raise PatternError("FilterCriteria must be an object")
    filters = criteria.get("Filters") or []
    if not isinstance(filters, list):
        raise PatternError("FilterCriteria.Filters must be a list")
    if len(filters) > MAX_FILTERS:
        raise PatternError(f"at most {MAX_FILTERS} filters are allowed, got {len(filters)}")
    patterns = []
    for item in filters:
        if not isinstance(item, Mapping) or not isinstance(item.get("Pattern"), str):
            raise PatternError("each filter must be an object with a Pattern string")
        pattern = compile_pattern(item["Pattern"])
        others = [key for key in pattern.top_level_keys if key != DYNAMODB_KEY]
        if others:
            raise PatternError(f"{DYNAMODB_KEY_ONLY}; the pattern names {', '.join(others)}")
        patterns.append(pattern)
    return CompiledFilters(tuple(patterns))


def compile_pattern(text: str) -> Pattern:
    """One pattern's syntax and operators (any top-level key: ``compile_filter_criteria``
    applies the DynamoDB rule)."""
    if len(text) > MAX_PATTERN_LENGTH:
        raise PatternError(f"pattern longer than {MAX_PATTERN_LENGTH} characters")
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PatternError(f"pattern is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict) or not parsed:
        raise PatternError("pattern must be a non-empty JSON object")
    alternatives = tuple(tuple(tests) for tests in _compile_object(parsed, ()))
    return Pattern(text, alternatives, tuple(parsed))


def _compile_object(obj: Mapping[str, Any], prefix: Path) -> list[list[FieldTest]]:
    """The object's conjunctions; ``$or`` multiplies them out."""
    conjunctions: list[list[FieldTest]] = [[]]
    for key, value in obj.items():
        if key == "$or":
            if not isinstance(value, list) or len(value) < 2:
                raise PatternError("$or needs a list of at least two patterns")
            options: list[list[FieldTest]] = []
            for option in value:
                if not isinstance(option, dict) or not option:
                    raise PatternError("each $or alternative must be a non-empty object")
                options.extend(_compile_object(option, prefix))
        elif isinstance(value, dict):
            if not value:
                raise PatternError(f"empty object at {'.'.join((*prefix, key))}")
            options = _compile_object(value, (*prefix, key))
        elif isinstance(value, list):
            options = [[_compile_field((*prefix, key), value)]]
        else:
            raise PatternError(
                f"{'.'.join((*prefix, key))}: a pattern value must be a list or an object"
            )
        conjunctions = [[*left, *right] for left in conjunctions for right in options]
    return conjunctions


def _compile_field(path: Path, items: Sequence[Any]) -> FieldTest:
    where = ".".join(path)
    if not items:
        raise PatternError(f"{where}: empty list of values")
    rules: list[Rule] = []
    exists: list[bool] = []
    for item in items:
        if isinstance(item, dict):
            if len(item) != 1:
                raise PatternError(f"{where}: an operator object takes exactly one key")
            ((op, arg),) = item.items()
            if op == "exists":
                if not isinstance(arg, bool):
                    raise PatternError(f"{where}: exists takes true or false")
                exists.append(arg)
            else:
                rules.append(_compile_operator(where, op, arg))
        elif isinstance(item, list):
            raise PatternError(f"{where}: nested lists are not allowed")
        else:
            rules.append(Rule("equals", item))
    return FieldTest(path, tuple(rules), tuple(exists))


def _compile_operator(where: str, op: str, arg: Any) -> Rule:
    if op in ("prefix", "suffix"):
        if not isinstance(arg, str):
            raise PatternError(f"{where}: {op} takes a string (Lambda documents no other form)")
        return Rule(op, arg)
    if op == "equals-ignore-case":
        if not isinstance(arg, str):
            raise PatternError(f"{where}: equals-ignore-case takes a string")
        return Rule(op, arg.casefold())
    if op == "numeric":
        return Rule(op, bounds=_numeric_bounds(where, arg))
    if op == "anything-but":
        return Rule(op, inner=_anything_but(where, arg))
    raise PatternError(
        f"{where}: operator {op!r} is not one Lambda documents for event filtering "
        f"({', '.join(LAMBDA_OPERATORS)})"
    )


def _numeric_bounds(where: str, arg: Any) -> tuple[tuple[str, float], ...]:
    if not isinstance(arg, list) or len(arg) not in (2, 4):
        raise PatternError(f"{where}: numeric takes [op, number] or [op, n, op, n]")
    bounds: list[tuple[str, float]] = []
    for op, bound in zip(arg[::2], arg[1::2], strict=True):
        if op not in ("=", "<", "<=", ">", ">="):
            raise PatternError(f"{where}: unknown numeric operator {op!r}")
        if isinstance(bound, bool) or not isinstance(bound, int | float):
            raise PatternError(f"{where}: numeric bounds must be numbers")
        bounds.append((op, float(bound)))
    if len(bounds) == 2:
        (low_op, low), (high_op, high) = bounds
        if low_op not in (">", ">=") or high_op not in ("<", "<=") or low > high:
            raise PatternError(f"{where}: a numeric range is [>|>=, low, <|<=, high]")
    return tuple(bounds)


def _anything_but(where: str, arg: Any) -> tuple[Rule, ...]:
    if isinstance(arg, dict):
        # EventBridge's anything-but with prefix/suffix/wildcard/equals-ignore-case: not in
        # Lambda's filter rule table.
        raise PatternError(f"{where}: anything-but takes a value or a list of values")
    values = arg if isinstance(arg, list) else [arg]
    if not values:
        raise PatternError(f"{where}: anything-but needs at least one value")
    for value in values:
        if isinstance(value, dict | list) or value is None or isinstance(value, bool):
            raise PatternError(f"{where}: anything-but takes strings or numbers")
    return tuple(Rule("equals", value) for value in values)


# --- records -----------------------------------------------------------------------------


def flatten(record: Mapping[str, Any]) -> FlatRecord:
    """Leaf path -> values; arrays contribute every element, objects are not values."""
    flat: FlatRecord = {}
    for path, value in _leaves(record, ()):
        flat.setdefault(path, []).append(value)
    return flat


def _leaves(value: Any, path: Path) -> Iterator[tuple[Path, Any]]:
    if isinstance(value, Mapping):
        for key, child in value.items():
            yield from _leaves(child, (*path, str(key)))
    elif isinstance(value, list):
        for child in value:
            yield from _leaves(child, path)
    elif path:
        yield path, value
