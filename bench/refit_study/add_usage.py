"""add_usage.py DIR...: record in DIR/info.json which lifted inputs (params, buffers, constants) the exported
graph never uses (placeholders without users): only those may be missing from the blob and still change."""
import json, sys
sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
import torch
from models import make
for d in sys.argv[1:]:
    info = json.load(open(d + "/info.json"))
    m, args, dyn = make(info["model"], info["seed"])
    ep = torch.export.export(m, args, dynamic_shapes=dyn)
    users = {n.name: len(n.users) for n in ep.graph.nodes if n.op == "placeholder"}
    unused = [s.target for s in ep.graph_signature.input_specs if s.kind.name != "USER_INPUT" and users[s.arg.name] == 0]
    info["unused"] = unused
    json.dump(info, open(d + "/info.json", "w"), indent=1)
    print(d, "unused:", unused)
