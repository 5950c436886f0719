"""A feature set declared in config, computed over whole arrays or one step at a time with the
same numbers.

Each declared feature becomes a node keyed by (kind, inputs, parameters); two declarations with
the same key — or a feature another feature reads — share one node, so identical
sub-computations run once (zipline Pipeline's terms). Inputs are base columns of the step
(:data:`~tradestack.features.registry.BOOK_COLUMNS` or ``BAR_COLUMNS``) or other features by
name; multi-output kinds (MACD, Bollinger) pick one part with ``output``.
"""

from __future__ import annotations

import difflib
import math
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tradestack.features.registry import KINDS, FeatureKind

_RESERVED = ("kind", "input", "inputs", "output")


class FeatureSpecError(ValueError):
    """A feature declaration that cannot be built; the message names the feature and field."""


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """One declared feature: ``name: {kind: sma, input: mid, period: 3}``."""

    name: str
    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)
    inputs: Mapping[str, str] = field(default_factory=dict)
    output: str | None = None

    @classmethod
    def from_config(cls, name: str, entry: Mapping[str, Any]) -> FeatureSpec:
        """Read a config entry: ``kind``, optional ``input`` (the first input), ``inputs`` (by
        argument name), ``output`` (of a multi-output kind); every other key is a parameter."""
        if not isinstance(entry, Mapping):
            raise FeatureSpecError(f"feature {name!r}: expected a mapping, got {entry!r}")
        kind = entry.get("kind")
        if not isinstance(kind, str):
            raise FeatureSpecError(f"feature {name!r}: needs 'kind' (one of {', '.join(KINDS)})")
        spec_kind = _kind_named(name, kind)
        given = entry.get("inputs") or {}
        if not isinstance(given, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in given.items()
        ):
            raise FeatureSpecError(
                f"feature {name!r}: inputs must map input names to column or feature names, "
                f"got {given!r}"
            )
        inputs = dict(given)
        if "input" in entry:
            if not isinstance(entry["input"], str):
                raise FeatureSpecError(
                    f"feature {name!r}: input must be a column or feature name, "
                    f"got {entry['input']!r}"
                )
            inputs[spec_kind.inputs[0]] = entry["input"]
        output = entry.get("output")
        if output is not None and not isinstance(output, str):
            raise FeatureSpecError(f"feature {name!r}: output must be a name, got {output!r}")
        params = {k: v for k, v in entry.items() if k not in _RESERVED}
        return cls(name, kind, params, inputs, output)


def _check_param(feature: str, kind: FeatureKind, key: str, value: Any) -> None:
    """A parameter has the type the batch function declares (int, or a finite float)."""
    expected = typing.get_type_hints(kind.batch).get(key)
    if expected is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif expected is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        ok = ok and math.isfinite(value)
    else:
        return
    if not ok:
        raise FeatureSpecError(
            f"feature {feature!r} ({kind.name}): {key} must be "
            f"{'an int' if expected is int else 'a finite number'}, got {value!r}"
        )


def _kind_named(feature: str, kind: str) -> FeatureKind:
    found = KINDS.get(kind)
    if found is None:
        close = difflib.get_close_matches(kind, list(KINDS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f" (kinds: {', '.join(KINDS)})"
        raise FeatureSpecError(f"feature {feature!r}: unknown kind {kind!r}{hint}")
    return found


Ref = tuple[str, int, int]
"""Where a value lives: ("col", column index, -1) or ("node", node index, output index or -1)."""


@dataclass(frozen=True, slots=True)
class _Node:
    kind: FeatureKind
    args: tuple[Ref, ...]
    params: tuple[tuple[str, Any], ...]


class FeatureSet:
    """Compiled feature declarations over a fixed list of base columns (see module docstring)."""

    def __init__(self, specs: Sequence[FeatureSpec], base_columns: Sequence[str]) -> None:
        self.specs = list(specs)
        self.base_columns = tuple(base_columns)
        self.names = [s.name for s in self.specs]
        twice = sorted({n for n in self.names if self.names.count(n) > 1})
        if twice:
            raise FeatureSpecError(f"features declared twice: {', '.join(twice)}")
        clash = sorted(set(self.names) & set(self.base_columns))
        if clash:
            raise FeatureSpecError(f"feature names shadow base columns: {', '.join(clash)}")
        self._by_name = {s.name: s for s in self.specs}
        self._nodes: list[_Node] = []
        self._node_of: dict[_Node, int] = {}
        self._refs: dict[str, Ref] = {}
        self._node_names: list[str] = []  # the feature that declared each node first
        for spec in self.specs:
            self._resolve_feature(spec.name, ())

    @classmethod
    def from_config(
        cls, entries: Mapping[str, Mapping[str, Any]], base_columns: Sequence[str]
    ) -> FeatureSet:
        return cls([FeatureSpec.from_config(n, e) for n, e in entries.items()], base_columns)

    @property
    def n_computations(self) -> int:
        """Distinct computations after sharing identical sub-computations."""
        return len(self._nodes)

    def describe(self) -> list[dict[str, Any]]:
        """Per feature: kind, parameters and what it reads."""
        return [
            {
                "name": s.name,
                "kind": s.kind,
                "params": dict(s.params),
                "inputs": dict(s.inputs),
                "output": s.output,
            }
            for s in self.specs
        ]

    # -- compilation ----------------------------------------------------------------------------
    def _resolve_feature(self, name: str, stack: tuple[str, ...]) -> Ref:
        if name in self._refs:
            return self._refs[name]
        if name in stack:
            raise FeatureSpecError(f"features read each other in a cycle: {' -> '.join(stack)}")
        spec = self._by_name[name]
        kind = _kind_named(name, spec.kind)
        known = kind.parameters
        for key in spec.params:
            if key not in known:
                close = difflib.get_close_matches(key, list(known), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise FeatureSpecError(
                    f"feature {name!r} ({spec.kind}): unknown parameter {key!r}{hint} "
                    f"(parameters: {', '.join(known) or 'none'})"
                )
        missing = [k for k, v in known.items() if v is None and k not in spec.params]
        if missing:
            raise FeatureSpecError(f"feature {name!r} ({spec.kind}) needs {', '.join(missing)}")
        for key in spec.inputs:
            if key not in kind.inputs:
                raise FeatureSpecError(
                    f"feature {name!r} ({spec.kind}): no input {key!r} "
                    f"(inputs: {', '.join(kind.inputs)})"
                )
        args = tuple(
            self._resolve_input(name, spec.inputs.get(arg, default), (*stack, name))
            for arg, default in zip(kind.inputs, kind.defaults, strict=True)
        )
        for key, value in spec.params.items():
            _check_param(name, kind, key, value)
        params = tuple(sorted({**known, **spec.params}.items()))
        try:  # the incremental form validates its parameters (periods, windows, buckets)
            kind.incremental(**dict(params))
        except (TypeError, ValueError) as exc:
            raise FeatureSpecError(f"feature {name!r} ({spec.kind}): {exc}") from None
        node = _Node(kind, args, params)
        index = self._node_of.get(node)
        if index is None:
            index = self._node_of[node] = len(self._nodes)
            self._nodes.append(node)
            self._node_names.append(name)
        if kind.outputs:
            if spec.output is None or spec.output not in kind.outputs:
                raise FeatureSpecError(
                    f"feature {name!r} ({spec.kind}): output must be one of "
                    f"{', '.join(kind.outputs)}, got {spec.output!r}"
                )
            ref: Ref = ("node", index, kind.outputs.index(spec.output))
        elif spec.output is not None:
            raise FeatureSpecError(f"feature {name!r} ({spec.kind}) has one output")
        else:
            ref = ("node", index, -1)
        self._refs[name] = ref
        return ref

    def _resolve_input(self, feature: str, source: str, stack: tuple[str, ...]) -> Ref:
        if source in self._by_name:
            return self._resolve_feature(source, stack)
        if source in self.base_columns:
            return ("col", self.base_columns.index(source), -1)
        options = [*self.base_columns, *self._by_name]
        close = difflib.get_close_matches(source, options, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise FeatureSpecError(
            f"feature {feature!r}: input {source!r} is neither a feature nor a column of this "
            f"data{hint} (columns: {', '.join(self.base_columns)})"
        )

    # -- batch ----------------------------------------------------------------------------------
    def batch(self, frame: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every feature over whole columns; ``frame`` maps base column names to arrays."""
        missing = [c for c in self.base_columns if c not in frame]
        if missing:
            raise ValueError(f"frame lacks columns {', '.join(missing)}")
        columns = [np.asarray(frame[c]) for c in self.base_columns]
        results: list[Any] = []

        def value(ref: Ref) -> Any:
            where, index, part = ref
            got = columns[index] if where == "col" else results[index]
            return got if part < 0 else got[part]

        for node, name in zip(self._nodes, self._node_names, strict=True):
            args = [value(r) for r in node.args]
            call = _restarting_batch if node.kind.restart_on_gap else _direct_batch
            try:
                results.append(call(node.kind, args, dict(node.params)))
            except Exception as exc:  # TA-Lib raises bare Exceptions on bad parameters
                raise FeatureSpecError(
                    f"feature {name!r} ({node.kind.name}): {type(exc).__name__}: {exc}"
                ) from exc
        return {name: np.asarray(value(self._refs[name]), dtype=np.float64) for name in self.names}

    # -- incremental ----------------------------------------------------------------------------
    def incremental(self) -> IncrementalFeatures:
        """A fresh one-step-at-a-time evaluator of the same features."""
        return IncrementalFeatures(self)


class IncrementalFeatures:
    """Updates every feature of a :class:`FeatureSet` from one step's base values, O(1) each.

    ``update(row)`` takes the base values in ``FeatureSet.base_columns`` order (a level column
    is a sequence of ``k`` floats) and returns the features in declaration order. The set is
    compiled into one straight-line function (one local per value, one call per computation),
    so the per-step cost is the feature arithmetic, not the dispatch.
    """

    __slots__ = ("_step", "names", "source", "values")

    def __init__(self, features: FeatureSet) -> None:
        n_base = len(features.base_columns)
        names = {("col", i, -1): f"c{i}" for i in range(n_base)}
        lines = [f"    ({''.join(f'c{i}, ' for i in range(n_base))}) = row"]
        namespace: dict[str, Any] = {}

        def local(ref: Ref) -> str:
            if ref not in names:  # one part of a multi-output node
                _, index, part = ref
                names[ref] = f"n{index}_{part}"
                lines.append(f"    {names[ref]} = n{index}[{part}]")
            return names[ref]

        for i, node in enumerate(features._nodes):
            arg_names = [local(ref) for ref in node.args]
            args = ", ".join(arg_names)
            make = node.kind.incremental
            params = dict(node.params)
            namespace[f"u{i}"] = make(**params).update
            names[("node", i, -1)] = f"n{i}"
            if node.kind.restart_on_gap:  # a NaN input: NaN out, and start afresh
                namespace[f"g{i}"] = _restart(namespace, f"u{i}", make, params, node.kind)
                gap = " or ".join(f"{a} != {a}" for a in arg_names)
                lines.append(f"    n{i} = g{i}() if {gap} else u{i}({args})")
            else:
                lines.append(f"    n{i} = u{i}({args})")
        outputs = [local(features._refs[name]) for name in features.names]
        lines.append(f"    return ({''.join(f'{o}, ' for o in outputs)})")
        self.source = "def step(row):\n" + "\n".join(lines) + "\n"
        exec(compile(self.source, "<feature set>", "exec"), namespace)
        self._step: Callable[[Sequence[Any]], tuple[float, ...]] = namespace["step"]
        self.names = list(features.names)
        self.values: tuple[float, ...] = tuple(math.nan for _ in outputs)

    def update(self, row: Sequence[Any]) -> tuple[float, ...]:
        """Feed one step's base values; returns every feature's new value."""
        values = self._step(row)
        self.values = values
        return values


def _direct_batch(kind: FeatureKind, args: list[Any], params: dict[str, Any]) -> Any:
    return kind.batch(*args, **params)


def _restarting_batch(kind: FeatureKind, args: list[Any], params: dict[str, Any]) -> Any:
    """The batch form run separately on each stretch without missing inputs (NaN elsewhere),
    as :class:`_Restarting` does one step at a time."""
    ok = np.ones(len(args[0]), dtype=bool)
    for a in args:
        ok &= ~np.isnan(a)
    first = int(np.argmax(ok)) if ok.any() else len(ok)
    if ok[first:].all():  # at most leading gaps, which TA-Lib skips itself
        return kind.batch(*args, **params)
    edges = np.flatnonzero(np.diff(np.concatenate(([False], ok, [False])).astype(np.int8)))
    parts = kind.outputs or ("",)
    out = [np.full(len(ok), np.nan) for _ in parts]
    for lo, hi in zip(edges[::2], edges[1::2], strict=True):
        got = kind.batch(*(a[lo:hi] for a in args), **params)
        for j, piece in enumerate(got if kind.outputs else (got,)):
            out[j][lo:hi] = piece
    return tuple(out) if kind.outputs else out[0]


def _restart(
    namespace: dict[str, Any],
    slot: str,
    make: Callable[..., Any],
    params: dict[str, Any],
    kind: FeatureKind,
) -> Callable[[], Any]:
    """What a restarting indicator does on a gap: replace itself with a fresh one (the
    generated step function looks its updater up by name) and report NaN."""
    gap: Any = (math.nan,) * len(kind.outputs) if kind.outputs else math.nan

    def restart() -> Any:
        namespace[slot] = make(**params).update
        return gap

    return restart
