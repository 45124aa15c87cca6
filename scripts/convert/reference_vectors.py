#!/usr/bin/python3
"""Write tests/data/model_reference.json: reference embeddings of our chips.

    build/test_models --write-chips DIR
    /usr/bin/python3 reference_vectors.py --chips DIR --tflite MobileFaceNet.tflite \\
        --manifest face_recognition_model-weights_manifest.json \\
        --weights face_recognition_model.bin [--ref ../shared/models-ref] \\
        --out tests/data/model_reference.json

test_models writes, for the largest face of sample1..3.jpg, the landmarks
(rounded to 0.001 px) and the 112x112 and 150x150 chips our alignment makes
from them. This script computes what the two converted models must output
for those chips without OpenCV and without the ONNX files, from the original
weights:

- MobileFaceNet: the numpy float64 TFLite interpreter of verify.py, fed RGB
  (x - 127.5) / 128 by hand, in the batch of 2 baked into the file.
- dlib: a float64 numpy forward pass written here from the layer table of
  ../shared/MODELS.md, with its own weight decoding (uint8 q * scale + min
  in float32). It shares no code with dlib2onnx.py. With --ref it first
  checks itself against models-ref/reference.json's descriptors.

Vectors are stored L2-normalised, as fa_embed_model returns them. The test
rebuilds the chips from the photos and the stored landmarks and compares
each component within 1e-3.
"""
import argparse
import json
import os
import sys

import cv2
import numpy as np

from tflite_flatbuffer import read_tflite
from verify import run_tflite_reference

DLIB_MEAN_RGB = np.array([122.782, 117.001, 104.298])
DLIB_BLOCKS = ["conv32_1", "conv32_2", "conv32_3", "conv64_down", "conv64_1", "conv64_2",
               "conv64_3", "conv128_down", "conv128_1", "conv128_2", "conv256_down",
               "conv256_1", "conv256_2", "conv256_down_out"]


# --- dlib's ResNet in numpy ------------------------------------------------------

def dlib_weights(manifest, weights):
    """Name -> float64 array from the face-api manifest and weight file."""
    with open(manifest, encoding="utf-8") as f:
        entries = [e for group in json.load(f) for e in group["weights"]]
    with open(weights, "rb") as f:
        data = f.read()
    out, pos = {}, 0
    for e in entries:
        count = int(np.prod(e["shape"]))
        q = e.get("quantization")
        if q:
            raw = np.frombuffer(data, np.uint8, count, pos).astype(np.float32)
            value = raw * np.float32(q["scale"]) + np.float32(q["min"])
            pos += count
        else:
            value = np.frombuffer(data, "<f4", count, pos)
            pos += 4 * count
        out[e["name"]] = value.astype(np.float64).reshape(e["shape"])
    if pos != len(data):
        raise ValueError(f"{weights}: {len(data)} bytes, manifest describes {pos}")
    return out


def _conv(w, x, name, stride, pad):
    """HWC conv with filters [kh, kw, cin, cout], then (y + bias) * scale + shift."""
    f = w[name + "/conv/filters"]
    kh, kw = f.shape[:2]
    x = np.pad(x, ((pad, pad), (pad, pad), (0, 0)))
    oh, ow = (x.shape[0] - kh) // stride + 1, (x.shape[1] - kw) // stride + 1
    y = np.zeros((oh, ow, f.shape[3]))
    for i in range(kh):
        for j in range(kw):
            y += x[i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride] @ f[i, j]
    y += w[name + "/conv/bias"]
    return y * w[name + "/scale/weights"] + w[name + "/scale/biases"]


def _pool(x, k, stride, reduce):
    """k x k pooling, no padding, floor."""
    oh, ow = (x.shape[0] - k) // stride + 1, (x.shape[1] - k) // stride + 1
    views = [x[i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride]
             for i in range(k) for j in range(k)]
    return reduce(np.stack(views), axis=0)


def _grow(x, h, w, c):
    """Zero-pad at the bottom, right and high channels to h x w x c."""
    return np.pad(x, ((0, h - x.shape[0]), (0, w - x.shape[1]), (0, c - x.shape[2])))


def dlib_forward(w, chip_bgr):
    """The 128-D descriptor of a 150x150 BGR chip (MODELS.md's table)."""
    relu = lambda v: np.maximum(v, 0)  # noqa: E731
    x = (chip_bgr[:, :, ::-1].astype(np.float64) - DLIB_MEAN_RGB) / 255
    x = _pool(relu(_conv(w, x, "conv32_down", 2, 0)), 3, 2, np.max)
    for name in DLIB_BLOCKS:
        if not name.endswith("_down") and not name.endswith("_down_out"):
            y = _conv(w, relu(_conv(w, x, name + "/conv1", 1, 1)), name + "/conv2", 1, 1)
            x = relu(y + x)
            continue
        y = _conv(w, relu(_conv(w, x, name + "/conv1", 2, 0)), name + "/conv2", 1, 1)
        s = _pool(x, 2, 2, np.mean)
        h, wd = max(y.shape[0], s.shape[0]), max(y.shape[1], s.shape[1])
        c = max(y.shape[2], s.shape[2])
        x = relu(_grow(y, h, wd, c) + _grow(s, h, wd, c))
    return x.mean(axis=(0, 1)) @ w["fc"]


def check_dlib_reference(w, ref_dir):
    """Max |diff| of our numpy dlib against models-ref/reference.json."""
    with open(os.path.join(ref_dir, "reference.json"), encoding="utf-8") as f:
        ref = json.load(f)
    worst = 0.0
    for e in ref:
        chip = cv2.imread(os.path.join(ref_dir, e["name"] + "_chip150.png"))
        worst = max(worst, float(np.abs(dlib_forward(w, chip) - e["descriptor128"]).max()))
    return worst


# --- MobileFaceNet ----------------------------------------------------------------

def mfn_forward(graph, chip_bgr):
    """The 192-D output for one 112x112 BGR chip, in the file's baked batch."""
    x = (chip_bgr[:, :, ::-1].astype(np.float64) - 127.5) / 128
    batch = graph.tensors[graph.inputs[0]].shape[0]
    return run_tflite_reference(graph, np.stack([x] * batch))[0]


# --- main ---------------------------------------------------------------------------

def _unit(v):
    v = np.asarray(v, np.float64)
    return [round(float(t), 8) for t in v / np.linalg.norm(v)]


def _read(path):
    img = cv2.imread(path)
    if img is None:
        raise OSError(f"cannot read {path}")
    return img


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--chips", required=True, help="folder written by test_models --write-chips")
    p.add_argument("--tflite", required=True)
    p.add_argument("--manifest", required=True)
    p.add_argument("--weights", required=True)
    p.add_argument("--ref", help="models-ref folder: check the numpy dlib against it first")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    w = dlib_weights(args.manifest, args.weights)
    if args.ref:
        worst = check_dlib_reference(w, args.ref)
        print(f"numpy dlib vs reference.json: max |diff| {worst:.2e}", file=sys.stderr)
        if worst > 1e-4:
            raise ValueError("the numpy dlib reference does not reproduce reference.json")
    graph = read_tflite(args.tflite)
    with open(os.path.join(args.chips, "faces.json"), encoding="utf-8") as f:
        faces = json.load(f)
    for face in faces:
        stem = os.path.join(args.chips, face["image"].rsplit(".", 1)[0])
        face["mobilefacenet-1"] = _unit(mfn_forward(graph, _read(stem + "_chip112.png")))
        face["dlib_resnet-1"] = _unit(dlib_forward(w, _read(stem + "_chip150.png")))
    doc = {
        "about": "Reference embeddings (L2-normalised) of the largest face of each demo photo, "
                 "from the chips our alignment makes with these landmarks; computed by "
                 "scripts/convert/reference_vectors.py with numpy from the original TFLite and "
                 "tfjs weights (no OpenCV, no ONNX). chipN_sum: sum of the chip's BGR bytes.",
        "faces": faces,
    }
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"wrote {args.out} ({len(faces)} faces)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (OSError, ValueError, KeyError) as e:
        sys.exit(f"reference_vectors: {e}")
