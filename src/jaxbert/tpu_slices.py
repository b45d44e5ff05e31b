"""Cloud TPU slices by their user-facing names (v4-32, v5e-16, …): chip layout and HBM.

`jaxbert plan --target SLICE` builds the slice's devices from this table with libtpu's
compile-only topology, so the TPU compiler can compile for hardware that is not here.
Names follow Cloud TPU's: v4 and v5p count TensorCores (two per chip, one megacore
device per chip), v5e and v6e count chips. Layouts are those of MaxText's
`accelerator_to_spec_map.py` (per slice shape; the host bounds decide how many hosts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from jaxbert.errors import UserError

GIB = 1024**3

# Chip layouts per number of chips. 3D tori (v4, v5p) and 2D meshes (v5e, v6e).
_LAYOUT_3D = {
    4: (2, 2, 1), 8: (2, 2, 2), 16: (2, 2, 4), 32: (2, 4, 4), 64: (4, 4, 4),
    128: (4, 4, 8), 256: (4, 8, 8), 512: (8, 8, 8), 1024: (8, 8, 16), 2048: (8, 16, 16),
    4096: (16, 16, 16),
}  # fmt: skip
_LAYOUT_2D = {
    1: (1, 1), 4: (2, 2), 8: (2, 4), 16: (4, 4), 32: (4, 8), 64: (8, 8), 128: (8, 16),
    256: (16, 16),
}  # fmt: skip


@dataclass(frozen=True)
class Generation:
    prefix: str  # libtpu's topology name prefix
    megacore: bool  # v4/v5p: the name counts TensorCores, 2 per chip (device)
    hbm_gib: float  # per chip (device), what the TPU compiler may allocate
    device_kind: str  # flops.PEAK_FLOPS key


# hbm_gib: the limit the compiler enforces (its RESOURCE_EXHAUSTED message quotes it);
# v5e's was measured (15.75 GiB of 16); the others are measured the same way by
# benchmarks/tpu_plan.py (`hbm` rows) and recorded in docs/tpu.md.
GENERATIONS = {
    "v4": Generation("v4", True, 30.75, "TPU v4"),
    "v5e": Generation("v5e", False, 15.75, "TPU v5 lite"),
    "v5p": Generation("v5", True, 95.74, "TPU v5p"),
    "v6e": Generation("v6e", False, 31.25, "TPU v6 lite"),
}


@dataclass(frozen=True)
class Slice:
    name: str
    generation: Generation
    layout: tuple[int, ...]  # chips per torus/mesh dimension
    slices: int = 1  # multi-slice (DCN) count

    @property
    def devices_per_slice(self) -> int:
        return math.prod(self.layout)

    @property
    def devices(self) -> int:
        return self.devices_per_slice * self.slices

    @property
    def hbm_bytes(self) -> float:
        return self.generation.hbm_gib * GIB

    @property
    def topology_name(self) -> str:
        return f"{self.generation.prefix}:{'x'.join(map(str, self.layout))}"

    @property
    def label(self) -> str:
        return self.name if self.slices == 1 else f"{self.slices}x {self.name}"


def known_slices() -> list[str]:
    names = []
    for gen, g in GENERATIONS.items():
        layouts = _LAYOUT_3D if g.megacore else _LAYOUT_2D
        names += [f"{gen}-{chips * (2 if g.megacore else 1)}" for chips in layouts]
    return names


def parse_slice(name: str, slices: int = 1) -> Slice:
    """'v5e-16' → its Slice; an unknown name is one error listing the known ones."""
    gen, _, count = name.partition("-")
    g = GENERATIONS.get(gen)
    if g is None or not count.isdigit():
        raise UserError(f"--target {name!r}: expected a Cloud TPU slice such as v5e-16 or v4-32")
    chips = int(count) // (2 if g.megacore else 1)
    layout = (_LAYOUT_3D if g.megacore else _LAYOUT_2D).get(chips)
    if layout is None or chips * (2 if g.megacore else 1) != int(count):
        raise UserError(
            f"--target {name!r}: unknown {gen} slice; known: "
            + ", ".join(n for n in known_slices() if n.startswith(gen + "-"))
        )
    if slices < 1:
        raise UserError(f"--slices must be at least 1, got {slices}")
    return Slice(name, g, layout, slices)


def topology_kwargs(s: Slice) -> dict:
    """Arguments of `jax.experimental.topologies.get_topology_desc` for one slice shape."""
    layout3 = s.layout + (1,) * (3 - len(s.layout))
    per_host = (2, 2, 1)
    if not s.generation.megacore and s.devices_per_slice == 8:
        per_host = (2, 4, 1)  # v5e-8 / v6e-8: one host with 8 chips
    if s.devices_per_slice < 4:
        per_host = layout3
    big = s.devices_per_slice >= 64
    wrap = tuple(big and d >= 4 if s.generation.megacore else d >= 16 for d in layout3)
    return dict(
        platform="tpu",
        topology_name=s.topology_name,
        chip_config_name="megacore" if s.generation.megacore else "default",
        chips_per_host_bounds=per_host,
        num_slices=s.slices,
        wrap=wrap,
    )
