"""accuracy_defs.py - what bench/accuracy.py measures and bench/accuracy_report.py
reports share: the models, the operating points, the protocols' sizes and the
issue's targets."""

MODELS = ("fr_feature", "mobilefacenet", "dlib")   # column order of `faceauth embed --model all`
DIMS = (512, 192, 128)
MODEL_FILES = ("fr_detect.onnx", "fr_landmark.onnx", "fr_feature.onnx", "mobilefacenet.onnx",
               "dlib_resnet.onnx")                    # every network an embedding passes through
FMRS = (1e-3, 1e-4, 1e-5)
HIGH, LOW = 1e-4, 1e-3                               # FMR of precision "high" and "low"
CAP = 10                                             # images per person in the all-pairs protocol
N_FOLDS = 5
K_MAX = 15          # 5 enrolled + 10 learned photos: the most templates a user can have
SMALL_SETS = ("deepface", "face_recognition", "face-api.js", "openface", "facenet-pytorch",
              "compreface", "dlib", "orl_att_faces", "yalefaces")
QUALITY_GATES = ("noface", "several", "small", "dark", "bright", "pose", "blurry", "spoof")

# The targets and MODELS.md's figures for single models (lfw-dev, all pairs).
TARGET_FUSED = {1e-4: 0.040, 1e-3: 0.018}
TARGET_CV_ACC = 0.990
TARGET_K3 = 0.020
TARGET_QUALITY = 0.01
MODELS_MD = {"fr_feature": {1e-3: 0.030, 1e-4: 0.066}, "mobilefacenet": {1e-4: 0.058}}
