import sys, torch
sys.path.insert(0, ".")
from m.llama import build
for name, seed in zip(sys.argv[1::2], sys.argv[2::2]):
    m = build(); g = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for k, t in m.state_dict().items():
            t.copy_(torch.randn(t.shape, generator=g) * 0.05)
    torch.save(m.state_dict(), f"m/{name}.pt")
