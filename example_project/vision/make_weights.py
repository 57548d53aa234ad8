"""Regenerate vision/classifier_weights.pt and vision/classifier_finetuned.pt.

Run from the workspace root (the directory holding WORKSPACE.aot.yaml):

    python -m vision.make_weights

The checkpoint is a plain state_dict (loadable with
torch.load(path, weights_only=True)). They use other seeds than the
factory and non-trivial batchnorm statistics, so outputs differ visibly
depending on whether the weights were actually loaded. The fine-tuned
checkpoint stands for another training run of the same architecture.
"""

from pathlib import Path

import torch

from vision.classifier import TinyClassifier

HERE = Path(__file__).resolve().parent
SEEDS = {"classifier_weights.pt": 1234, "classifier_finetuned.pt": 4321}


def write(out: Path, seed: int) -> None:
    model = TinyClassifier()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                continue  # e.g. BatchNorm num_batches_tracked
            if name.endswith("running_var"):
                tensor.copy_(0.5 + torch.rand(tensor.shape, generator=g))
            elif name.endswith("running_mean"):
                tensor.copy_(0.1 * torch.randn(tensor.shape, generator=g))
            else:
                tensor.copy_(0.2 * torch.randn(tensor.shape, generator=g))
    torch.save(model.state_dict(), out)
    print(f"wrote {out} ({sum(p.numel() for p in model.parameters())} parameters)")


def main() -> None:
    for name, seed in SEEDS.items():
        write(HERE / name, seed)


if __name__ == "__main__":
    main()
