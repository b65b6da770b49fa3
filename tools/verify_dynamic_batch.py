"""Check that the derived variable-batch mnist-8 graph computes exactly what the original does.

The derived graph is only trustworthy if batching changes nothing: for every batch size,
the float32 logits must be bit-identical to the original graph run one image at a time,
and top-1 must match the published accuracy. This script measures both, on all 10,000
MNIST test images, with onnxruntime on one thread, and prints the figures recorded in
``assets/mnist/NOTICE.md``.

Usage (from the repository root)::

    .venv/bin/python tools/verify_dynamic_batch.py [--batch-sizes 1,7,64,256,1024,10000]
"""

from __future__ import annotations

import argparse
import gzip
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

REPO_ROOT = Path(__file__).resolve().parent.parent
MNIST = REPO_ROOT / "assets" / "mnist"


def read_idx(path: Path, magic: int, ndim: int) -> np.ndarray:
    """Read a gzip IDX file of unsigned bytes, checking its magic number and size."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    header = np.frombuffer(raw, dtype=">u4", count=1 + ndim)
    if int(header[0]) != magic:
        raise ValueError(f"{path}: expected IDX magic {magic}, got {int(header[0])}")
    shape = tuple(int(d) for d in header[1:])
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 * (1 + ndim))
    if body.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape}, got {body.size} bytes of data")
    return body.reshape(shape)


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_batched(sess: ort.InferenceSession, x: np.ndarray, batch: int) -> tuple[np.ndarray, float]:
    """Logits for all of ``x`` in batches of ``batch`` (last one ragged), and seconds taken."""
    name = sess.get_inputs()[0].name
    chunks = [np.ascontiguousarray(x[i : i + batch]) for i in range(0, len(x), batch)]
    sess.run(None, {name: chunks[0]})  # warm-up: first-run allocations are not the model's cost
    start = time.perf_counter()
    out = [sess.run(None, {name: c})[0] for c in chunks]
    return np.concatenate(out), time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-sizes", default="1,7,64,256,1024,10000")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.batch_sizes.split(",")]

    images = read_idx(MNIST / "t10k-images-idx3-ubyte.gz", 2051, 3)
    labels = read_idx(MNIST / "t10k-labels-idx1-ubyte.gz", 2049, 1).astype(np.int64)
    x = (images.astype(np.float32) / np.float32(255.0)).reshape(-1, 1, 28, 28)
    print(f"onnxruntime {ort.__version__}, numpy {np.__version__}, {len(x)} images, 1 thread")

    reference, secs = run_batched(session(MNIST / "mnist-8.onnx"), x, 1)
    top1 = float(np.mean(reference.argmax(axis=1) == labels))
    print(f"original  batch 1: top-1 {top1:.4f}, {secs / len(x) * 1e6:.1f} us/image")
    print("first 10 predictions:", reference[:10].argmax(axis=1).tolist())

    derived = session(MNIST / "mnist-8-dynbatch.onnx")
    all_identical = True
    for batch in sizes:
        logits, secs = run_batched(derived, x, batch)
        identical = bool(np.array_equal(logits, reference))
        all_identical &= identical
        diff = float(np.max(np.abs(logits - reference)))
        ulp = np.abs(logits.view(np.int32).astype(np.int64) - reference.view(np.int32))
        rows = int(np.count_nonzero(np.any(logits != reference, axis=1)))
        top1 = float(np.mean(logits.argmax(axis=1) == labels))
        last = len(x) % batch or batch
        print(
            f"derived   batch {batch} (last batch {last}): bit-identical {identical}, "
            f"differing rows {rows}, max |diff| {diff:.3g}, max ulp {int(ulp.max())}, "
            f"top-1 {top1:.4f}, {secs / len(x) * 1e6:.1f} us/image"
        )
    return 0 if all_identical else 1


if __name__ == "__main__":
    sys.exit(main())
