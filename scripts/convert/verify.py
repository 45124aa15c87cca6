#!/usr/bin/python3
"""Check the converted face models in OpenCV against independent references.

    /usr/bin/python3 verify.py --tflite MobileFaceNet.tflite
        [--models DIR] [--ref DIR] [--runs N]

Both ONNX files are run through cv2.dnn.readNetFromONNX (the loader the
server uses) on the reference chips of ../shared/models-ref:

- dlib_resnet.onnx against reference.json's 128-D descriptors (each
  component within 1e-3) and its pair distances.
- mobilefacenet.onnx against a plain numpy interpreter of the TFLite graph
  itself: NHWC, TFLite's own padding rule, PReLU still split into
  RELU/ABS/SUB/MUL/ADD, float64. It shares only the FlatBuffer reader with
  the converter, so it catches wrong layouts, pads, slopes and ordering.

Wrong padding or preprocessing still gives plausible-looking vectors; only
such comparisons catch it. Exits 1 when any check fails.
"""
import argparse
import json
import os
import sys
import time

import cv2
import numpy as np

from tflite_flatbuffer import ACTIVATION, PADDING, read_tflite

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FACES = ("face1", "face2", "face3", "face4")
SAME_PERSON = {("face1", "face2"), ("face3", "face4")}

DLIB_TOL = 1e-3         # per component, the project's acceptance criterion
MFN_MIN_COSINE = 0.99999
MFN_MAX_REL = 1e-4      # max |diff| / max |reference|; measured ~1e-6


# --- reference interpreter for the TFLite graph -------------------------------

def _tflite_pads(size, kernel, stride, dilation, padding):
    """(before, after) exactly as TFLite's ComputePaddingHeightWidth: the
    odd pixel of SAME padding goes after (bottom/right)."""
    if PADDING[padding] == "VALID":
        return 0, 0
    effective = (kernel - 1) * dilation + 1
    out = (size + stride - 1) // stride
    total = max(0, (out - 1) * stride + effective - size)
    return total // 2, total // 2 + total % 2


def _activate(x, options):
    act = ACTIVATION[options.get("activation", 0)]
    if act == "NONE":
        return x
    if act == "RELU":
        return np.maximum(x, 0)
    raise ValueError(f"fused {act} not implemented in the reference")


def _ref_conv(x, w, bias, o, depthwise):
    """NHWC convolution; W is OHWI (CONV_2D) or 1HWC (DEPTHWISE_CONV_2D)."""
    _, kh, kw, _ = w.shape
    top, bottom = _tflite_pads(x.shape[1], kh, o["stride_h"], o["dilation_h"], o["padding"])
    left, right = _tflite_pads(x.shape[2], kw, o["stride_w"], o["dilation_w"], o["padding"])
    x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    sh, sw, dh, dw = o["stride_h"], o["stride_w"], o["dilation_h"], o["dilation_w"]
    oh = (x.shape[1] - (kh - 1) * dh - 1) // sh + 1
    ow = (x.shape[2] - (kw - 1) * dw - 1) // sw + 1
    if depthwise:
        # Output channel k reads input channel k // depth_multiplier.
        x = np.repeat(x, o["depth_multiplier"], axis=3)
        out = np.zeros((x.shape[0], oh, ow, w.shape[3]))
    else:
        out = np.zeros((x.shape[0], oh, ow, w.shape[0]))
    for i in range(kh):
        for j in range(kw):
            patch = x[:, i * dh:i * dh + sh * (oh - 1) + 1:sh,
                      j * dw:j * dw + sw * (ow - 1) + 1:sw, :]
            out += patch * w[0, i, j] if depthwise else patch @ w[:, i, j, :].T
    return _activate(out + bias, o)


def _ref_op(op, args):
    """Output of one TFLite op on float64 arrays ARGS (NHWC)."""
    if op.op in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        return _ref_conv(*args, op.options, op.op == "DEPTHWISE_CONV_2D")
    simple = {"ADD": np.add, "SUB": np.subtract, "MUL": np.multiply}
    if op.op in simple:
        return _activate(simple[op.op](*args), op.options)
    if op.op == "RELU":
        return np.maximum(args[0], 0)
    if op.op == "ABS":
        return np.abs(args[0])
    if op.op == "RESHAPE":
        shape = op.options["new_shape"] or tuple(args[1].astype(int))
        return args[0].reshape(shape)
    raise ValueError(f"{op.op} not implemented in the reference")


def run_tflite_reference(graph, x):
    """Run GRAPH on the NHWC batch X in float64; returns the graph output."""
    values = {graph.inputs[0]: x}
    for op in graph.operators:
        args = [values[t] if t in values else graph.tensors[t].data.astype(np.float64)
                for t in op.inputs]
        values[op.outputs[0]] = _ref_op(op, args)
    return values[graph.outputs[0]]


# --- checks --------------------------------------------------------------------

def _cosine(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _read_chip(ref_dir, name):
    chip = cv2.imread(os.path.join(ref_dir, name))
    if chip is None:
        raise OSError(f"cannot read {os.path.join(ref_dir, name)}")
    return chip


def _forward(net, blob):
    net.setInput(blob)
    return net.forward().astype(np.float64)


def _time_ms(net, blob, runs):
    """Median one-thread wall time of one forward pass, after warm-up."""
    net.setInput(blob)
    for _ in range(5):
        net.forward()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        net.forward()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def _pairs():
    return [(a, b) for i, a in enumerate(FACES) for b in FACES[i + 1:]]


def _report_pairs(label, score, lower_is_alike=False):
    """Print SCORE(a, b) for every pair; True when every same-person pair
    scores more alike than every cross pair."""
    same, cross = [], []
    for a, b in _pairs():
        value = score(a, b)
        kind = "same " if (a, b) in SAME_PERSON else "cross"
        print(f"  {label} {a}-{b} ({kind}) {value:.4f}")
        (same if (a, b) in SAME_PERSON else cross).append(value)
    if lower_is_alike:
        return max(same) < min(cross)
    return min(same) > max(cross)


def check_dlib(path, ref_dir, runs):
    net = cv2.dnn.readNetFromONNX(path)
    with open(os.path.join(ref_dir, "reference.json"), encoding="utf-8") as f:
        expected = {e["name"]: np.array(e["descriptor128"]) for e in json.load(f)}
    got, blob = {}, None
    for face in FACES:
        chip = _read_chip(ref_dir, face + "_chip150.png")
        blob = cv2.dnn.blobFromImage(chip, 1 / 255.0, (150, 150),
                                     (122.782, 117.001, 104.298), swapRB=True)
        got[face] = _forward(net, blob)[0]
    worst = max(np.abs(got[f] - expected[f]).max() for f in FACES)
    print(f"dlib_resnet.onnx: max |diff| vs reference.json {worst:.2e} (limit {DLIB_TOL:g})")
    ok = bool(worst <= DLIB_TOL)
    pair_err = max(abs(np.linalg.norm(got[a] - got[b]) - np.linalg.norm(expected[a] - expected[b]))
                   for a, b in _pairs())
    ok &= pair_err <= DLIB_TOL
    ok &= _report_pairs("distance", lambda a, b: np.linalg.norm(got[a] - got[b]),
                        lower_is_alike=True)
    print(f"  pair distances differ from reference.json's by at most {pair_err:.1e}")
    print(f"  forward, 1 thread: {_time_ms(net, blob, runs):.2f} ms")
    return ok


def _mfn_chips(ref_dir):
    chips = [_read_chip(ref_dir, f + "_chip112.png") for f in FACES]
    # Reference preprocessing done by hand (not blobFromImage): BGR -> RGB,
    # (x - 127.5) / 128, NHWC.
    nhwc = np.stack([(c[:, :, ::-1].astype(np.float64) - 127.5) / 128 for c in chips])
    return chips, nhwc


def _mfn_reference(tflite, nhwc):
    """Reference outputs, fed in the batch size baked into the file."""
    graph = read_tflite(tflite)
    batch = graph.tensors[graph.inputs[0]].shape[0]
    return np.concatenate([run_tflite_reference(graph, nhwc[i:i + batch])
                           for i in range(0, len(nhwc), batch)])


def check_mobilefacenet(path, tflite, ref_dir, runs):
    net = cv2.dnn.readNetFromONNX(path)
    chips, nhwc = _mfn_chips(ref_dir)
    expected = _mfn_reference(tflite, nhwc)
    blobs = [cv2.dnn.blobFromImage(c, 1 / 128.0, (112, 112), (127.5, 127.5, 127.5), swapRB=True)
             for c in chips]
    got = np.concatenate([_forward(net, b) for b in blobs])
    cos = min(_cosine(g, e) for g, e in zip(got, expected))
    rel = max(np.abs(g - e).max() / np.abs(e).max() for g, e in zip(got, expected))
    # The file bakes in batch 2; our graph has a symbolic batch. Check it.
    batch = _forward(net, cv2.dnn.blobFromImages(chips, 1 / 128.0, (112, 112),
                                                  (127.5, 127.5, 127.5), swapRB=True))
    batch_diff = np.abs(batch - got).max()
    print(f"mobilefacenet.onnx: vs numpy TFLite reference: min cosine 1 - {1 - cos:.1e} "
          f"(limit {MFN_MIN_COSINE}), max |diff| {np.abs(got - expected).max():.2e}, "
          f"max rel {rel:.2e} (limit {MFN_MAX_REL:g})")
    print(f"  batch of 4 vs one by one: max |diff| {batch_diff:.2e}; "
          f"norms {', '.join(f'{n:.1f}' for n in np.linalg.norm(got, axis=1))}")
    ok = bool(cos > MFN_MIN_COSINE and rel < MFN_MAX_REL and batch_diff < 1e-4)
    vectors = dict(zip(FACES, got))
    ok &= _report_pairs("cosine", lambda a, b: _cosine(vectors[a], vectors[b]))
    print(f"  forward, 1 thread: {_time_ms(net, blobs[0], runs):.2f} ms")
    return ok


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tflite", required=True, help="MobileFaceNet.tflite (for the reference)")
    parser.add_argument("--models", default=os.path.join(ROOT, "models"),
                        help="folder with dlib_resnet.onnx and mobilefacenet.onnx")
    parser.add_argument("--ref", default=os.path.join(ROOT, "..", "shared", "models-ref"),
                        help="folder with reference.json and the face chips")
    parser.add_argument("--runs", type=int, default=100, help="forward passes to time")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)  # timings comparable with MODELS.md; also the server's per-thread use
    ok = check_dlib(os.path.join(args.models, "dlib_resnet.onnx"), args.ref, args.runs)
    ok &= check_mobilefacenet(os.path.join(args.models, "mobilefacenet.onnx"),
                              args.tflite, args.ref, args.runs)
    print("all checks passed" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (OSError, ValueError, cv2.error) as e:
        sys.exit(f"verify: {e}")
