"""check_layout.py DIR...: does our serialization of DIR/weights.pt equal the blob in DIR/model.so byte for byte?
Also: the runner's view of the constants (names, fqns) and their offsets in its own copy of the blob."""
import json, sys
sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
import torch
from elfblob import locate_blob
from layout import kept_fqns, ordered_tensors, serialize

for d in sys.argv[1:]:
    info = json.load(open(d + "/info.json"))
    w = torch.load(d + "/weights.pt")
    so = open(d + "/model.so", "rb").read()
    off, n, sec, tab = locate_blob(so)
    blob = so[off:off + n]
    keep = kept_fqns(d + "/model.so")
    mine, table = serialize(ordered_tensors(info["signature"], w, keep))
    print(f"{d}: blob {n} B at {off:#x} in {sec}; ours {len(mine)} B; equal: {mine == blob}")
    if mine != blob:
        # which tensors are in the blob at all, and where?
        for name, o, k in table:
            t = bytes(mine[o:o + k])
            print(f"   {name:30s} ours@{o:<7} found@{blob.find(t) if k else '-'} ({k} B)")
    r = torch._C._aoti.AOTIModelContainerRunnerCpu(d + "/model.so", 1)
    fq = r.get_constant_names_to_original_fqns()
    cm = r.extract_constants_map(False)
    ptrs = {k: v.data_ptr() for k, v in cm.items()}
    base = min(ptrs.values())
    by_off = sorted((p - base, k) for k, p in ptrs.items())
    ours = {name: o for name, o, _ in table}
    print("   runner constants (internal name -> fqn):", len(fq), "; ordered by data_ptr offset in the runner's copy:")
    print("   ", [(o, k, ours.get(k)) for o, k in by_off])
    print("   runner offsets == ours:", all(ours.get(k) == o for o, k in by_off), "; fqns not in our table:",
          sorted(set(fq.values()) - set(ours)))
