"""Collectives of a compiled (optimised) HLO module, counted per executed step.

A collective inside a `while` body (the scanned layers, grad accumulation) runs once per
iteration, so each computation's count is multiplied by how often it executes: while
bodies by their trip count (read from the loop condition's bound), everything else once
per call. Bytes are the full (gathered / reduced) array each collective moves, as its
result type shows; the TPU compiler's fused `all-reduce-scatter` counts as reduce-scatter.
"""

from __future__ import annotations

import re
from collections import defaultdict

KINDS = ("all-gather", "reduce-scatter", "all-reduce", "all-to-all", "collective-permute")
_HEADER = re.compile(r"^(ENTRY )?%([\w.\-]+) \(.*\{$")
_OP = re.compile(r"= (.*?) (all-gather|reduce-scatter|all-reduce|all-to-all|collective-permute)"
                 r"(-start)?\(")  # fmt: skip
_ARRAY = re.compile(r"\b(pred|s8|u8|s16|u16|bf16|f16|s32|u32|f32|s64|u64|f64)\[([\d,]*)\]")
_BYTES = {"pred": 1, "s8": 1, "u8": 1, "s16": 2, "u16": 2, "bf16": 2, "f16": 2, "s32": 4,
          "u32": 4, "f32": 4, "s64": 8, "u64": 8, "f64": 8}  # fmt: skip
_WHILE = re.compile(r"while\(.*condition=%([\w.\-]+), body=%([\w.\-]+)")
_CALLS = re.compile(r"(?:calls|to_apply|branch_computations)=\{?([%\w.\-, ]+)\}?")
_CONST = re.compile(r"s32\[\]\S* constant\((\d+)\)")


def _arrays(text: str) -> list[int]:
    out = []
    for dtype, dims in _ARRAY.findall(text):
        n = 1
        for d in filter(None, dims.split(",")):
            n *= int(d)
        out.append(n * _BYTES[dtype])
    return out


def split_computations(hlo: str) -> tuple[dict[str, list[str]], str]:
    """{computation name: its lines}, and the ENTRY computation's name."""
    comps, entry, name = {}, "", None
    for line in hlo.splitlines():
        m = _HEADER.match(line)
        if m:
            name = m.group(2)
            comps[name] = []
            entry = name if m.group(1) else entry
        elif name is not None:
            comps[name].append(line)
    return comps, entry


def _edges(lines: list[str], comps: dict) -> list[tuple[str, int]]:
    """(callee, times per call) of one computation."""
    out = []
    for line in lines:
        w = _WHILE.search(line)
        if w:
            bounds = [int(c) for c in _CONST.findall("\n".join(comps.get(w.group(1), [])))]
            out.append((w.group(2), max(bounds, default=1)))
            continue
        for group in _CALLS.findall(line):
            out += [(c.strip().lstrip("%"), 1) for c in group.split(",") if c.strip()]
    return out


def collectives(hlo: str) -> dict[str, dict[str, float]]:
    """{kind: {"count": executions per step, "bytes": bytes per step}}."""
    comps, entry = split_computations(hlo)
    runs: dict[str, int] = defaultdict(int)

    def visit(name: str, times: int, depth: int = 0) -> None:
        if name not in comps or depth > 64:
            return
        runs[name] += times
        for callee, n in _edges(comps[name], comps):
            visit(callee, times * n, depth + 1)

    visit(entry, 1)
    totals = {k: {"count": 0, "bytes": 0.0} for k in KINDS}
    for name, times in runs.items():
        for line in comps[name]:
            m = _OP.search(line)
            if not m:
                continue
            kind = "reduce-scatter" if name.startswith("all-reduce-scatter") else m.group(2)
            sizes = _arrays(m.group(1))
            moved = max(sizes, default=0) if m.group(3) else sum(sizes)
            totals[kind]["count"] += times
            totals[kind]["bytes"] += times * moved
    return {k: v for k, v in totals.items() if v["count"]}
