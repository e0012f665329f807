"""Freshly built torchvision-style models exported the way users export them, for the false-alarm
tests (test/unit/exports.test.ts): BatchNorm folded into the convs by eval-mode export (torch.onnx's
constant folding), or kept with TrainingMode.PRESERVE; torchvision's own initialisation
(kaiming fan_out convs, an N(0, 0.01) head), SiLU, squeeze-and-excitation. Run with Debian's torch:
/usr/bin/python3 scripts/make_export_fixtures.py (writes test/fixtures/exports/)."""
import os

import torch
import torch.nn as nn
import torchvision

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "test", "fixtures", "exports")


class SiluSeNet(nn.Module):
    """Conv-BN-SiLU stages with a squeeze-and-excitation block, initialised as torchvision's
    EfficientNet (kaiming fan_out convs)."""

    def __init__(self):
        super().__init__()
        layers = []
        c = 3
        for out in (16, 32, 32, 64):
            layers += [nn.Conv2d(c, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.SiLU()]
            c = out
        self.features = nn.Sequential(*layers)
        self.se = torchvision.ops.SqueezeExcitation(64, 4, activation=nn.SiLU)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(64, 10)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        # A classifier drawn small on purpose, as torchvision's SqueezeNet and MobileNetV3 heads are.
        nn.init.normal_(self.head.weight, 0, 0.01)
        nn.init.zeros_(self.head.bias)

    def forward(self, x):
        return self.head(torch.flatten(self.pool(self.se(self.features(x))), 1))


def export(model, name, preserve=False):
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    path = os.path.join(OUT, f"{name}.onnx")
    kwargs = dict(training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False) if preserve else {}
    torch.onnx.export(model, x, path, opset_version=13, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, **kwargs)
    print(f"{name:28s} {os.path.getsize(path) / 1024:7.1f} KB")


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    mobilenet = torchvision.models.mobilenet_v2(width_mult=0.25, num_classes=10)
    export(mobilenet, "mobilenet_v2_folded")
    export(mobilenet, "mobilenet_v2_bn", preserve=True)
    torch.manual_seed(1)
    export(SiluSeNet(), "silu_se_folded")


if __name__ == "__main__":
    main()
