"""Serialize an exported program's weights the way we believe AOTI (CPU) lays out its constants blob:
graph-signature order (parameters, buffers, lifted tensor constants as listed in input_specs), each tensor's
bytes (contiguous, row-major) padded to 64 bytes."""
import torch

ALIGN = 64


def kept_fqns(so_path):
    """The constants the compiled model holds (inductor drops unused ones, e.g. num_batches_tracked)."""
    r = torch._C._aoti.AOTIModelContainerRunnerCpu(so_path, 1)
    return set(r.get_constant_names_to_original_fqns().values())


def ordered_tensors(sig, weights, keep=None):
    """sig: [(kind, target, persistent)] from ep.graph_signature.input_specs minus user inputs;
    weights: {"state_dict": ..., "constants": ...}; keep: fqns in the blob (None: all)."""
    out = []
    k = 0
    for kind, target, _ in sig:
        name = target
        if kind == "CONSTANT_TENSOR":  # AOTI knows lifted tensor constants as _tensor_constant<k> (a guess, checked
            name = f"_tensor_constant{k}"  # by comparing the bytes of the whole blob)
            k += 1
        if keep is not None and name not in keep:
            continue
        if kind in ("PARAMETER", "BUFFER") and target in weights["state_dict"]:
            out.append((target, weights["state_dict"][target]))
        elif kind in ("BUFFER", "CONSTANT_TENSOR"):
            out.append((name, weights["constants"][target]))
        else:
            raise ValueError(f"unsupported input kind {kind} {target}")
    return out


def tensor_bytes(t):
    t = t.detach()
    if not t.is_contiguous() or t.storage_offset() != 0 or t.untyped_storage().nbytes() != t.numel() * t.element_size():
        # AOTI serializes the whole untyped storage (and records storage_offset): refuse what we can't mirror
        raise ValueError("tensor is a view into a larger storage")
    return t.contiguous().view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""


def serialize(pairs):
    """(blob bytes, [(name, offset, nbytes)])."""
    parts, table, off = [], [], 0
    for name, t in pairs:
        b = tensor_bytes(t)
        pad = (-len(b)) % ALIGN
        parts.append(b + b"\0" * pad)
        table.append((name, off, len(b)))
        off += len(b) + pad
    return b"".join(parts), table


def runner_table(so_path):
    """[(fqn, offset, nbytes)] of the blob as the AOTI runtime lays it out: the runner copies the blob into one
    allocation with the same offsets, so data_ptr - base is the offset in the blob (CPU)."""
    r = torch._C._aoti.AOTIModelContainerRunnerCpu(so_path, 1)
    cm = r.extract_constants_map(False)  # fqn -> tensor; folded constants are not in the blob
    ptrs = {k: (v.data_ptr() - v.storage_offset() * v.element_size(), v.untyped_storage().nbytes()) for k, v in cm.items()}
    base = min(p for p, _ in ptrs.values())
    return sorted(((k, p - base, n) for k, (p, n) in ptrs.items()), key=lambda e: e[1])


def by_name(sig, weights):
    """{name as AOTI calls it: tensor} for every parameter, buffer and lifted constant."""
    out, k = {}, 0
    for kind, target, _ in sig:
        if kind == "CONSTANT_TENSOR":
            out[f"_tensor_constant{k}"] = weights["constants"][target]
            k += 1
        elif target in weights["state_dict"]:
            out[target] = weights["state_dict"][target]
        else:
            out[target] = weights["constants"][target]
    return out


def serialize_table(table, tensors, size):
    """The blob for `tensors` laid out by `table` ([(name, offset, nbytes)], gaps zero)."""
    blob = bytearray(size)
    for name, off, n in table:
        b = tensor_bytes(tensors[name])
        if len(b) != n:
            raise ValueError(f"{name}: {len(b)} bytes, the compiled model holds {n}")
        blob[off:off + n] = b
    return bytes(blob)
