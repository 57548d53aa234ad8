"""patch.py BASE NEW OUT: refit BASE's artifacts (compiled with old weights) with NEW/weights.pt -> OUT/model.{so,pt2}.
Refuses unless the old blob equals our serialization of BASE's weights and the build-id scheme checks out."""
import json, os, sys, time, zipfile
sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
import torch
from elfblob import locate_blob, build_id, ld_sha1_build_id
from layout import by_name, runner_table, serialize_table
from pt2zip import replace_member


def refit(base, new_weights, out, sig, unused=None):
    t = {}
    t0 = time.perf_counter()
    so = bytearray(open(base + "/model.so", "rb").read())
    off, n, _, _ = locate_blob(so)
    bid = build_id(so)
    if bid is None or ld_sha1_build_id(so) != so[bid[0]:bid[0] + bid[1]]:
        raise SystemExit("refuse: build-id is not ld's sha1 over this file")
    table = runner_table(base + "/model.so")  # a real tool records this once, at the full compile
    old_w = torch.load(base + "/weights.pt")
    if bytes(so[off:off + n]) != serialize_table(table, by_name(sig, old_w), n):
        raise SystemExit("refuse: blob != serialized old weights (layout not understood)")
    t["check_old"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    new_all, old_all = by_name(sig, new_weights), by_name(sig, old_w)
    in_blob = {name for name, _, _ in table}
    unused = set(unused or ())
    for name, tensor in new_all.items():  # a used tensor outside the blob was compiled into the code
        if name not in in_blob and name not in unused and not torch.equal(tensor, old_all[name]):
            raise SystemExit(f"refuse: {name} changed but is not in the constants blob (inlined into the code?)")
    new_blob = serialize_table(table, new_all, n)
    t["serialize_new"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    so[off:off + n] = new_blob
    so[bid[0]:bid[0] + bid[1]] = ld_sha1_build_id(so)
    t["patch_so"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    os.makedirs(out, exist_ok=True)
    open(out + "/model.so", "wb").write(so)
    pt2 = open(base + "/model.pt2", "rb").read()
    name = next(i for i in zipfile.ZipFile(base + "/model.pt2").namelist() if i.endswith(".so"))
    new_pt2, _, _ = replace_member(pt2, name, bytes(so))
    open(out + "/model.pt2", "wb").write(new_pt2)
    t["write_so_and_pt2"] = time.perf_counter() - t0
    return t


if __name__ == "__main__":
    base, new, out = sys.argv[1:4]
    sig = json.load(open(base + "/info.json"))["signature"]
    assert sig == json.load(open(new + "/info.json"))["signature"]
    t0 = time.perf_counter()
    w = torch.load(new + "/weights.pt")
    tl = time.perf_counter() - t0
    t = refit(base, w, out, sig, json.load(open(base + '/info.json')).get('unused'))
    print("timings s:", {k: round(v, 3) for k, v in {"load_new_weights": tl, **t}.items()}, "total", round(tl + sum(t.values()), 3))
    # verify
    e = torch.load(new + "/eager.pt")
    r = torch._C._aoti.AOTIModelContainerRunnerCpu(out + "/model.so", 1)
    y = r.run(list(e["args"]))[0]
    print("runner(.so) vs eager M(W1): max abs err", (y - e["out"]).abs().max().item())
    r0 = torch._C._aoti.AOTIModelContainerRunnerCpu(base + "/model.so", 1)
    print("   (unpatched M(W0) .so vs eager M(W1): max abs err", (r0.run(list(e["args"]))[0] - e["out"]).abs().max().item(), ")")
    z = zipfile.ZipFile(out + "/model.pt2"); bad = z.testzip()
    print("zip testzip:", bad)
    m = torch._inductor.aoti_load_package(out + "/model.pt2")
    y2 = m(*e["args"])
    print("aoti_load_package(.pt2) vs eager M(W1): max abs err", (y2 - e["out"]).abs().max().item())
    if "--dyn" in sys.argv:
        for b in (1, 7, 33):
            x = torch.randn(b, *e["args"][0].shape[1:])
            print(f"   batch {b}: pt2 vs eager(W1 weights via runner check) shape {tuple(m(x).shape)}")
    so_same = open(out + "/model.so", "rb").read() == open(new + "/model.so", "rb").read()
    pt2_same = open(out + "/model.pt2", "rb").read() == open(new + "/model.pt2", "rb").read()
    print(f"patched .so == fresh M(W1) .so: {so_same}; patched .pt2 == fresh M(W1) .pt2: {pt2_same}")
