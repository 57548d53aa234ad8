"""refit_time.py BASE NEW OUT: the patch path alone, timed from process start (no verification)."""
import time
T0 = time.perf_counter()
import json, sys
sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
import torch
T_import = time.perf_counter() - T0
from patch import refit
base, new, out = sys.argv[1:4]
sig = json.load(open(base + "/info.json"))["signature"]
t0 = time.perf_counter()
w = torch.load(new + "/weights.pt")
tl = time.perf_counter() - t0
t = refit(base, w, out, sig)
print(json.dumps({"import_torch": round(T_import, 3), "load_new_weights": round(tl, 3),
                  **{k: round(v, 3) for k, v in t.items()}, "total_since_start": round(time.perf_counter() - T0, 3)}))
