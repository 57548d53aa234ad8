import json, os, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch
from models import make
from aotbuild.actions import refit
from pathlib import Path
cases = sys.argv[1:]
for case in cases:
    model = case.replace("_keep", "")
    info = json.load(open(f"out/{case}/w0/info.json"))
    eps = []
    for seed in (0, 1):
        m, args, dyn = make(model, seed)
        eps.append(torch.export.export(m, args, dynamic_shapes=dyn))
    base = Path(f"out/{case}/w0"); new = Path(f"out/{case}/w1")
    lib = info["library"]
    t = time.time()
    try:
        rec = refit.derive(eps[0], base / "model.so", base / "model.pt2", lib)
    except refit.Unsafe as e:
        print(case, "derive refused:", e); continue
    td = time.time() - t
    t = time.time()
    try:
        so, pt2 = refit.repackage(rec, eps[1], (base / "model.so").read_bytes(), (base / "model.pt2").read_bytes())
    except refit.Unsafe as e:
        print(case, "repackage refused:", type(e).__name__, e, "fixed:", [f["name"] for f in rec["fixed"]]); continue
    tr = time.time() - t
    print(case, f"derive {td:.2f}s repackage {tr:.2f}s", "so equal", so == (new / "model.so").read_bytes(),
          "pt2 equal", pt2 == (new / "model.pt2").read_bytes(), "fixed", [f["name"] for f in rec["fixed"]],
          "rows", len(rec["table"]), [r["name"] + "<-" + r["source"] for r in rec["table"] if r["name"] != r["source"]])
