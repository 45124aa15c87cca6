#!/usr/bin/python3
"""Convert dlib's ResNet face descriptor (face-api.js packaging) to ONNX.

    /usr/bin/python3 dlib2onnx.py face_recognition_model-weights_manifest.json \\
        face_recognition_model.bin dlib_resnet.onnx

Input comes from @vladmandic/face-api@1.7.15, package/model/. The result
loads in OpenCV 4.6's cv::dnn::readNetFromONNX: input "input" [1,3,150,150]
(RGB, (x - (122.782, 117.001, 104.298)) / 255), output "descriptor" [1,128]
(not normalised). The output file is a pure function of the input bytes, so
set-up can pin it by sha256.

Network (described in ../shared/MODELS.md beside the repository): a 7x7/2
conv and a 3x3/2 max-pool, then 14 residual blocks, global average and a
256 -> 128 matrix. Each conv
is followed in the source by a per-channel affine ("scale" layer); we fold
that into the conv's weights and bias, which is exact up to float rounding.
"""
import argparse
import hashlib
import json
import os
import sys
from collections import Counter

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13
# Pinned rather than taken from the onnx package, so the output bytes (and
# their sha256 in models/CONVERTED.sha256) do not change with its version.
IR_VERSION = 8
SIZE = 150

# Residual blocks in order: (name, is a down-sampling block).
BLOCKS = [("conv32_1", False), ("conv32_2", False), ("conv32_3", False),
          ("conv64_down", True), ("conv64_1", False), ("conv64_2", False),
          ("conv64_3", False),
          ("conv128_down", True), ("conv128_1", False), ("conv128_2", False),
          ("conv256_down", True), ("conv256_1", False), ("conv256_2", False),
          ("conv256_down_out", True)]


def _decode(entry, data, pos):
    """(array, bytes used) for one manifest ENTRY stored at DATA[POS:]."""
    count = int(np.prod(entry["shape"]))
    quant = entry.get("quantization")
    if entry["dtype"] != "float32" or (quant and quant["dtype"] != "uint8"):
        raise ValueError(f"{entry['name']}: unsupported dtype in manifest")
    if not quant:
        return np.frombuffer(data, "<f4", count, pos).reshape(entry["shape"]), 4 * count
    # In float32, with scale and min rounded to float32 first, as
    # reference.json was computed. Rounding min shifts a whole tensor by one
    # tiny amount, which adds up coherently over 2304-term sums: float64
    # here lands 3e-6 from reference.json, float32 7e-7.
    q = np.frombuffer(data, np.uint8, count, pos).astype(np.float32)
    value = q * np.float32(quant["scale"]) + np.float32(quant["min"])
    return value.reshape(entry["shape"]), count


def read_weights(manifest_path, weights_path):
    """Name -> float32 array, decoded from the back-to-back weights file.

    Quantised entries are uint8 with value = q * scale + min; the others are
    raw little-endian float32. Every byte must be used: a mismatch means a
    different model or manifest, which we must not silently convert.
    """
    with open(manifest_path, encoding="utf-8") as f:
        entries = [e for group in json.load(f) for e in group["weights"]]
    with open(weights_path, "rb") as f:
        data = f.read()
    expected = sum(int(np.prod(e["shape"])) * (1 if e.get("quantization") else 4)
                   for e in entries)
    if expected != len(data):
        raise ValueError(f"{weights_path}: {len(data)} bytes, manifest describes {expected}")
    weights, pos = {}, 0
    for entry in entries:
        weights[entry["name"]], used = _decode(entry, data, pos)
        pos += used
    return weights


class _Builder:
    """Accumulates ONNX nodes and initializers with readable, stable names."""

    def __init__(self, weights):
        self.weights = weights
        self.nodes = []
        self.initializers = []

    def constant(self, name, value, dtype=np.float32):
        self.initializers.append(numpy_helper.from_array(
            np.ascontiguousarray(value, dtype=dtype), name))
        return name

    def node(self, op_type, inputs, output, **attrs):
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=output, **attrs))
        return output

    def conv(self, x, prefix, stride, pad):
        """Conv of PREFIX with its scale layer folded in.

        dlib computes y = (conv(x) + bias) * s + t per output channel, so
        W' = W * s and b' = bias * s + t (in float64, rounded once).
        """
        def get(suffix):
            return self.weights[prefix + suffix].astype(np.float64)
        w = get("/conv/filters")                          # [kh, kw, cin, cout]
        s = get("/scale/weights")
        bias = get("/conv/bias") * s + get("/scale/biases")
        kernel = w.transpose(3, 2, 0, 1) * s[:, None, None, None]  # HWIO -> OIHW
        return self.node("Conv", [x, self.constant(prefix + "/W", kernel),
                                  self.constant(prefix + "/B", bias)],
                         prefix, kernel_shape=list(kernel.shape[2:]),
                         strides=[stride, stride], pads=[pad] * 4)

    def relu(self, x):
        return self.node("Relu", [x], x + "/relu")

    def pad(self, x, name, pads):
        """Zero padding; PADS in ONNX order (all begins, then all ends, NCHW)."""
        return self.node("Pad", [x, self.constant(name + "/pads", pads, np.int64)], name)


def _residual(b, x, name):
    """R: relu(conv2(relu(conv1(x))) + x), both 3x3 stride 1 pad 1."""
    y = b.relu(b.conv(x, name + "/conv1", 1, 1))
    y = b.conv(y, name + "/conv2", 1, 1)
    return b.relu(b.node("Add", [y, x], name + "/add"))


def _residual_down(b, x, name, in_hw, in_c):
    """D: like R, but conv1 is 3x3 stride 2 UNPADDED and the shortcut is a
    2x2/2 average pool. The two branches can differ in size and are
    zero-padded to match, as dlib's add_prev does: spatially at the
    bottom/right of the conv branch (8 -> 3 vs 4, 4 -> 1 vs 2), and in
    channels at the high indices of the shortcut (it keeps [0, cin)).
    Returns the output and its (height/width, channels); the pool branch is
    never the smaller one, so its size is the block's.
    """
    out_c = b.weights[name + "/conv1/conv/filters"].shape[3]
    conv_hw, pool_hw = (in_hw - 3) // 2 + 1, in_hw // 2
    y = b.relu(b.conv(x, name + "/conv1", 2, 0))
    y = b.conv(y, name + "/conv2", 1, 1)
    if conv_hw < pool_hw:
        extra = pool_hw - conv_hw
        y = b.pad(y, name + "/conv_pad", [0, 0, 0, 0, 0, 0, extra, extra])
    s = b.node("AveragePool", [x], name + "/pool", kernel_shape=[2, 2], strides=[2, 2])
    if out_c > in_c:
        s = b.pad(s, name + "/pool_pad", [0, 0, 0, 0, 0, out_c - in_c, 0, 0])
    return b.relu(b.node("Add", [y, s], name + "/add")), pool_hw, out_c


def _build_nodes(b):
    """All layers; returns the name of the 128-D output tensor."""
    # Both unpadded and floored: 150 -> 72 (7x7/2) -> 35 (3x3/2).
    x = b.relu(b.conv("input", "conv32_down", 2, 0))
    x = b.node("MaxPool", [x], "pool", kernel_shape=[3, 3], strides=[2, 2])
    hw, c = ((SIZE - 7) // 2 + 1 - 3) // 2 + 1, 32
    for name, down in BLOCKS:
        if down:
            x, hw, c = _residual_down(b, x, name, hw, c)
        else:
            x = _residual(b, x, name)
    x = b.node("GlobalAveragePool", [x], "mean")
    x = b.node("Flatten", [x], "flat", axis=1)
    return b.node("MatMul", [x, b.constant("fc", b.weights["fc"])], "descriptor")


def convert(weights, source_doc):
    """Build the ONNX model from the decoded WEIGHTS."""
    b = _Builder(weights)
    output = _build_nodes(b)
    graph = helper.make_graph(
        b.nodes, "dlib_resnet",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, [1, 128])],
        b.initializers, doc_string=source_doc)
    model = helper.make_model(graph, producer_name="faceauth dlib2onnx",
                              opset_imports=[helper.make_opsetid("", OPSET)],
                              ir_version=IR_VERSION)
    onnx.checker.check_model(model)
    return model


def _sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifest", help="face_recognition_model-weights_manifest.json")
    parser.add_argument("weights", help="face_recognition_model.bin")
    parser.add_argument("onnx", help="output file, e.g. models/dlib_resnet.onnx")
    args = parser.parse_args(argv)
    doc = "converted from " + ", ".join(
        f"{os.path.basename(p)} sha256 {_sha256(p)}" for p in (args.manifest, args.weights))
    model = convert(read_weights(args.manifest, args.weights), doc)
    onnx.save(model, args.onnx)
    counts = Counter(n.op_type for n in model.graph.node)
    print(f"{args.onnx}: {len(model.graph.node)} nodes {dict(counts)}", file=sys.stderr)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (OSError, ValueError, KeyError) as e:
        sys.exit(f"dlib2onnx: {e}")
