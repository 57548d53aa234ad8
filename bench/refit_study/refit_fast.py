"""refit_fast.py BASE NEW OUT: the patch path as a tool would run it, with the layout recorded at the full compile
(table + sha256 of the blob), so no runner load and no old weights. Times each step, incl. sha256 of both
outputs (what storing them in aotbuild's CAS costs)."""
import time
T0 = time.perf_counter()
import hashlib, json, os, sys, zipfile
sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
import torch
from elfblob import locate_blob, build_id, ld_sha1_build_id
from layout import by_name, runner_table, serialize_table
from pt2zip import replace_member
T_import = time.perf_counter() - T0
base, new, out = sys.argv[1:4]
rec_path = base + "/refit_record.json"
if not os.path.exists(rec_path):  # recorded once, after the full compile
    so = open(base + "/model.so", "rb").read()
    off, n, _, _ = locate_blob(so)
    json.dump({"table": runner_table(base + "/model.so"), "blob_sha256": hashlib.sha256(so[off:off + n]).hexdigest()},
              open(rec_path, "w"))
t = {}
def step(name, t0):
    t[name] = round(time.perf_counter() - t0, 3)
    return time.perf_counter()
t0 = time.perf_counter()
rec = json.load(open(rec_path))
sig = json.load(open(base + "/info.json"))["signature"]
w = torch.load(new + "/weights.pt")
t0 = step("load_new_weights", t0)
so = bytearray(open(base + "/model.so", "rb").read())
t0 = step("read_so", t0)
off, n, _, _ = locate_blob(so)
bid = build_id(so)
assert hashlib.sha256(memoryview(so)[off:off + n]).hexdigest() == rec["blob_sha256"], "base blob changed"
assert ld_sha1_build_id(so) == so[bid[0]:bid[0] + bid[1]], "build-id scheme"
t0 = step("check_base(sha256 blob + build-id)", t0)
blob = serialize_table([tuple(e) for e in rec["table"]], by_name(sig, w), n)
t0 = step("serialize_new", t0)
so[off:off + n] = blob
so[bid[0]:bid[0] + bid[1]] = ld_sha1_build_id(so)
t0 = step("patch_blob+build_id", t0)
os.makedirs(out, exist_ok=True)
open(out + "/model.so", "wb").write(so)
t0 = step("write_so", t0)
pt2 = open(base + "/model.pt2", "rb").read()
name = next(i for i in zipfile.ZipFile(base + "/model.pt2").namelist() if i.endswith(".so"))
new_pt2, _, _ = replace_member(pt2, name, bytes(so))
open(out + "/model.pt2", "wb").write(new_pt2)
t0 = step("rewrite_pt2", t0)
hashlib.sha256(so).hexdigest(); hashlib.sha256(new_pt2).hexdigest()
t0 = step("sha256_outputs", t0)
print(json.dumps({"import_torch": round(T_import, 3), **t, "total_since_start": round(time.perf_counter() - T0, 3)}))
