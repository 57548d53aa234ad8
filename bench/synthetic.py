"""Generate a synthetic monorepo: many packages of small MLP targets, for planning and no-op scale tests."""

from __future__ import annotations

import sys
from pathlib import Path

MODEL = '''import torch


class Tiny(torch.nn.Module):
    def __init__(self, width: int = 8) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = torch.nn.Linear(width, width)

    def forward(self, x):
        return torch.relu(self.fc(x))
'''


def generate(root: Path, packages: int, targets_per_package: int, distinct_models: int = 10) -> list[str]:
    """Write the workspace; targets cycle through `distinct_models` widths, so most share a cached graph."""
    (root / "lib").mkdir(parents=True, exist_ok=True)
    (root / "WORKSPACE.aot.yaml").write_text("")
    (root / "lib" / "__init__.py").write_text("")
    (root / "lib" / "tiny.py").write_text(MODEL)
    labels = []
    for p in range(packages):
        pkg = f"group{p // 10}/pkg{p}"
        lines = ["targets:"]
        for t in range(targets_per_package):
            width = 4 + (p * targets_per_package + t) % distinct_models
            lines += [f"  m{t}:", "    model: lib.tiny:Tiny", f"    kwargs: {{width: {width}}}",
                      f"    inputs: {{x: {{shape: [2, {width}], dtype: float32}}}}"]
            labels.append(f"//{pkg}:m{t}")
        (root / pkg).mkdir(parents=True, exist_ok=True)
        (root / pkg / "BUILD.aot.yaml").write_text("\n".join(lines) + "\n")
    return labels


if __name__ == "__main__":
    generate(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
