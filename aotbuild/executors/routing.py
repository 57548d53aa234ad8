"""Which cluster nodes may run an action: Ray resources named after the toolchain parts an artifact key holds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aotbuild import cpu_levels
from aotbuild.text import plural

# A node advertises each of its labels as a custom resource this large, and a task asks for a sliver of it:
# a label, not a capacity (capacity is the node's CPUs and GPUs).
CPU_ISA = "aotbuild_cpu_isa:"
GPU_ARCH = "aotbuild_gpu_arch:"
CPU_LEVEL = "aotbuild_cpu_level:"
ADVERTISED = 1000.0
ASKED = 0.001


def node_resources(fingerprint: dict[str, Any], levels: Sequence[str] = ()) -> dict[str, float]:
    """What `ray start --resources` should say for a node with this toolchain fingerprint (its own, as
    `aotbuild executor resources` prints it): its CPU ISA, the portable `levels` its CPU runs and, where it
    has GPUs, their arch."""
    found = {CPU_ISA + fingerprint["compile"]["cpu_isa"]: ADVERTISED, **{CPU_LEVEL + x: ADVERTISED for x in levels}}
    if fingerprint["host"]["gpu_arch"]:
        found[GPU_ARCH + fingerprint["host"]["gpu_arch"]] = ADVERTISED
    return found


def needs(action: str, spec: dict[str, Any], toolchain: dict[str, Any]) -> dict[str, float]:
    """The resources an action of `spec` keyed on `toolchain` asks for. CPU code is -march=native, so even a
    CUDA artifact (whose wrapper is C++) is tied to the CPU ISA, unless the target asks for a portable level
    (then any node whose CPU runs the level); a CUDA one also to the GPU arch. An export's keys hold no CPU
    ISA: any node runs a CPU one, a node with the GPU arch a CUDA one."""
    level, device = cpu_levels.spec_level(spec), spec["device"]
    cpu = CPU_ISA + toolchain["compile"]["cpu_isa"] if level == cpu_levels.NATIVE else CPU_LEVEL + level
    wanted = {} if action == "export" else {cpu: ASKED}
    if device.startswith("cuda"):
        wanted[GPU_ARCH + str(toolchain["cuda"]["gpu_arch"])] = ASKED
        wanted["GPU"] = 1.0
    return wanted


@dataclass(frozen=True)
class Node:
    id: str
    address: str
    resources: dict[str, float] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """Short and stable for a node's life: its address and the start of its Ray id."""
        return f"{self.address}/{self.id[:6]}"

    def serves(self, wanted: dict[str, float]) -> bool:
        return all(self.resources.get(name, 0.0) >= amount for name, amount in wanted.items())

    def describe(self) -> str:
        labels = [n for n in sorted(self.resources) if n.startswith((CPU_ISA, GPU_ARCH, CPU_LEVEL))]
        cpus, gpus = int(self.resources.get("CPU", 0.0)), int(self.resources.get("GPU", 0.0))
        return (f"node {self.name} ({plural(cpus, 'CPU')}, {plural(gpus, 'GPU')}; "
                f"{', '.join(labels) if labels else 'no aotbuild labels'})")


def unserved(wanted: dict[str, float], nodes: list[Node]) -> str:
    """The error for an action no node can run: what it needs, what each node has, and how to fix it."""
    need = ", ".join(n for n in sorted(wanted) if n != "GPU") + (" and a GPU" if "GPU" in wanted else "")
    have = "; ".join(n.describe() for n in nodes) or "no live nodes"
    return (f"no node of the cluster can run it: they need {need}; the cluster has: {have}\n"
            "  fix: add a node with that CPU (and GPU), started with "
            "`ray start --address=... --resources=\"$(aotbuild executor resources)\"`")


def mismatch(expected: dict[str, Any], found: dict[str, Any], spec: dict[str, Any], action: str,
             levels: Sequence[str] = ()) -> list[str]:
    """The parts of the toolchain a key was computed for (`expected`) that a node's own fingerprint (`found`,
    with the portable `levels` its CPU runs) differs in: the node must refuse, or it would store an artifact
    under a key it does not own. An export's keys hold the `export` section only (and a CUDA one's graph
    depends on the GPU arch it ran on); a portable compile's key holds its level, not the CPU ISA."""
    level = cpu_levels.spec_level(spec)
    portable = level != cpu_levels.NATIVE
    keyed_elsewhere = {("compile", "cpu_isa")} if portable else set()
    sections = ("export",) + (("compile",) if action != "export" else ()) + \
        (("cuda",) if spec["device"].startswith("cuda") else ())
    differs = [f"{section}.{name}: key has {value!r}, node has {found.get(section, {}).get(name)!r}"
               for section in sections for name, value in sorted(expected[section].items())
               if found.get(section, {}).get(name) != value and (section, name) not in keyed_elsewhere]
    if action != "export" and portable and level not in levels:
        differs.append(f"cpu_isa: the key is for {level}, which this node's CPU does not run")
    return differs
