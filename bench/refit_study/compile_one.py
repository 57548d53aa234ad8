"""compile_one.py MODEL SEED STAGE OUT [--keep-cache] [key=value inductor options...]
Compiles like aotbuild: fixed staging dir, fresh TORCHINDUCTOR_CACHE_DIR (unless --keep-cache), line tables off,
package_constants_in_so=True (+ check_lowerbound=False when dynamic). Writes OUT/model.pt2, OUT/model.so,
OUT/weights.pt (ep.state_dict + ep.constants), OUT/eager.pt (input + eager output), OUT/info.json."""
import json, os, shutil, sys, time, zipfile
model, seed, stage, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
keep = "--keep-cache" in sys.argv
extra = dict(a.split("=", 1) for a in sys.argv[5:] if "=" in a)
extra = {k: json.loads(v) for k, v in extra.items()}
if not keep:
    shutil.rmtree(stage, ignore_errors=True)
os.makedirs(stage + "/stage", exist_ok=True)
os.makedirs("/tmp/refit-study/tmp", exist_ok=True)
os.environ["TORCHINDUCTOR_CACHE_DIR"] = stage + "/inductor"
os.environ["TMPDIR"] = "/tmp/refit-study/tmp"
os.environ.setdefault("AOT_INDUCTOR_ENABLE_LINE_TABLES", "0")
t0 = time.time()
import torch
sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
from models import make
t_import = time.time() - t0
m, args, dyn = make(model, seed)
t1 = time.time()
ep = torch.export.export(m, args, dynamic_shapes=dyn)
t_export = time.time() - t1
opts = {"aot_inductor.package_constants_in_so": True}
if dyn:
    opts["aot_inductor.check_lowerbound"] = False
opts.update(extra)
pt2 = stage + "/stage/model.pt2"
if os.path.exists(pt2):
    os.remove(pt2)
t2 = time.time()
ctx = [torch.backends.mkldnn.flags(enabled=False), torch.backends.nnpack.flags(enabled=False)] if dyn else []
import contextlib
with contextlib.ExitStack() as st:
    for c in ctx:
        st.enter_context(c)
    if "--no-grad" in sys.argv:  # inductor applies freezing only with grad mode off
        st.enter_context(torch.no_grad())
    torch._inductor.aoti_compile_and_package(ep, package_path=pt2, inductor_configs=opts)
t_compile = time.time() - t2
os.makedirs(out, exist_ok=True)
shutil.copy(pt2, out + "/model.pt2")
with zipfile.ZipFile(pt2) as z:
    libs = [n for n in z.namelist() if n.endswith(".so") and "/data/aotinductor/" in n]
    assert len(libs) == 1, libs
    open(out + "/model.so", "wb").write(z.read(libs[0]))
torch.save({"state_dict": dict(ep.state_dict), "constants": {k: v for k, v in ep.constants.items()
            if isinstance(v, torch.Tensor)}}, out + "/weights.pt")
with torch.no_grad():
    y = m(*args)
torch.save({"args": args, "out": y}, out + "/eager.pt")
sig = [(s.kind.name, s.target, getattr(s, "persistent", None)) for s in ep.graph_signature.input_specs
       if s.kind.name != "USER_INPUT"]
json.dump({"env": {k: os.environ.get(k) for k in ("TMPDIR", "AOT_INDUCTOR_ENABLE_LINE_TABLES")}, "model": model, "seed": seed, "stage": stage, "options": opts, "t_import": t_import,
           "t_export": t_export, "t_compile": t_compile, "signature": sig, "library": libs[0], "no_grad": "--no-grad" in sys.argv},
          open(out + "/info.json", "w"), indent=1)
print(f"{model} seed={seed} export={t_export:.2f}s compile={t_compile:.2f}s")
