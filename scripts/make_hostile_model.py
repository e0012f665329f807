"""Writes a copy of a fixture model whose node and tensor names carry HTML/JavaScript (issue 6: hostile names
must show inert in the webview). usage: /usr/bin/python3 scripts/make_hostile_model.py IN.onnx OUT.onnx"""
import sys

import onnx

IMG = "<img src=x onerror=window.__pwned=1>"
SCRIPT = "<script>window.__pwned=1</script>"

src, dst = sys.argv[1], sys.argv[2]
m = onnx.load(src)
g = m.graph
names = {}
for i, name in enumerate([v.name for v in g.input] + [t.name for t in g.initializer] + [o for n in g.node for o in n.output]):
    if name and name not in names:
        names[name] = f"{IMG if i % 2 == 0 else SCRIPT}{name}"
for v in list(g.input) + list(g.output) + list(g.value_info):
    v.name = names.get(v.name, v.name)
for t in g.initializer:
    t.name = names.get(t.name, t.name)
for i, n in enumerate(g.node):
    n.name = f"{SCRIPT if i % 2 == 0 else IMG}{n.name or n.op_type}"
    n.input[:] = [names.get(x, x) for x in n.input]
    n.output[:] = [names.get(x, x) for x in n.output]
onnx.checker.check_model(m)
onnx.save(m, dst)
