"""compare.py DIR_A DIR_B: zip members of the two model.pt2, and which bytes of the two .so differ."""
import sys, zipfile
sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
from elfblob import locate_blob, build_id

def ranges(a, b):
    """Differing byte ranges [start, end) between equal-length a and b (merging gaps < 8 bytes)."""
    out, i, n = [], 0, len(a)
    diff = [k for k in range(n) if a[k] != b[k]] if n < 1 << 16 else None
    if diff is None:  # fast path for large files: compare in chunks
        diff = []
        C = 4096
        for c in range(0, n, C):
            if a[c:c + C] != b[c:c + C]:
                diff.extend(k for k in range(c, min(c + C, n)) if a[k] != b[k])
    for k in diff:
        if out and k - out[-1][1] < 8:
            out[-1][1] = k + 1
        else:
            out.append([k, k + 1])
    return out

def main(A, B, quiet=False):
    za, zb = zipfile.ZipFile(A + "/model.pt2"), zipfile.ZipFile(B + "/model.pt2")
    na, nb = za.namelist(), zb.namelist()
    print("member names equal:", na == nb)
    for n in na:
        if n in nb:
            x, y = za.read(n), zb.read(n)
            print(f"  {'same' if x == y else 'DIFF'} {len(x):>9} {n.split('/')[-1]}")
            if x != y and not n.endswith(".so"):
                import difflib
                for l in list(difflib.unified_diff(x.decode(errors='replace').splitlines(), y.decode(errors='replace').splitlines(), lineterm="", n=0))[:12]:
                    print("      ", l[:200])
    a, b = open(A + "/model.so", "rb").read(), open(B + "/model.so", "rb").read()
    print("so sizes", len(a), len(b))
    if len(a) != len(b):
        return
    boff, blen, sec, tab = locate_blob(a)
    print(f"blob: file offset {boff:#x} len {blen} section {sec} (symbols from {tab}); same location in B: {locate_blob(b)[:2] == (boff, blen)}")
    bid = build_id(a)
    print(f"build-id desc at {bid[0]:#x} len {bid[1]}: A {a[bid[0]:bid[0]+bid[1]].hex()} B {b[bid[0]:bid[0]+bid[1]].hex()}")
    for s, e in ranges(a, b):
        where = ("inside blob" if boff <= s and e <= boff + blen else
                 "build-id" if bid[0] <= s and e <= bid[0] + bid[1] else "ELSEWHERE")
        print(f"  differ [{s:#x},{e:#x}) {e-s} bytes: {where}")

if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
