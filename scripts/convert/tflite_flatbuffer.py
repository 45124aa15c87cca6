"""Minimal reader for TFLite model files (FlatBuffers, schema v3).

We read the FlatBuffer by hand instead of importing tensorflow/tflite: set-up
must work with Debian's python3-numpy alone, and a float32 inference graph
needs only a handful of tables. Only the fields listed here are read; every
other field is skipped, so newer writers that add fields still parse.

FlatBuffer layout in one paragraph: the file starts with a uint32 offset to
the root table. A table starts with an int32 that, subtracted from the
table's position, gives its vtable: uint16 vtable size, uint16 table size,
then one uint16 per field slot holding the field's offset inside the table
(0 = absent, use the schema default). Strings, vectors and sub-tables are
stored as a uint32 offset relative to the position of that offset itself; a
vector is a uint32 length followed by its elements (for vectors of tables,
each element is again such a relative offset). Everything is little-endian.
"""
import struct
from dataclasses import dataclass

import numpy as np

# BuiltinOperator values of the ops we understand (schema v3 numbering).
OPCODES = {0: "ADD", 3: "CONV_2D", 4: "DEPTHWISE_CONV_2D", 18: "MUL",
           19: "RELU", 22: "RESHAPE", 41: "SUB", 101: "ABS"}

# Option fields per op: name -> (vtable slot, struct format, schema default).
# Slots follow the field order of the options tables in schema.fbs.
_OPTIONS = {
    "CONV_2D": {"padding": (0, "b", 0), "stride_w": (1, "i", 0),
                "stride_h": (2, "i", 0), "activation": (3, "b", 0),
                "dilation_w": (4, "i", 1), "dilation_h": (5, "i", 1)},
    "DEPTHWISE_CONV_2D": {"padding": (0, "b", 0), "stride_w": (1, "i", 0),
                          "stride_h": (2, "i", 0),
                          "depth_multiplier": (3, "i", 0),
                          "activation": (4, "b", 0),
                          "dilation_w": (5, "i", 1), "dilation_h": (6, "i", 1)},
    "ADD": {"activation": (0, "b", 0)},
    "SUB": {"activation": (0, "b", 0)},
    "MUL": {"activation": (0, "b", 0)},
}

PADDING = {0: "SAME", 1: "VALID"}
ACTIVATION = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6",
              4: "TANH", 5: "SIGN_BIT"}
_DTYPES = {0: np.dtype("<f4"), 2: np.dtype("<i4"), 4: np.dtype("<i8")}


class _Table:
    """One FlatBuffer table: typed access to its fields by vtable slot."""

    def __init__(self, buf, pos):
        self.buf = buf
        self.pos = pos
        self.vtable = pos - struct.unpack_from("<i", buf, pos)[0]
        self.vtable_size = struct.unpack_from("<H", buf, self.vtable)[0]

    def _field(self, slot):
        """Absolute position of field SLOT, or None when it is absent."""
        entry = 4 + 2 * slot
        if entry >= self.vtable_size:
            return None  # written by an older schema: field unknown to it
        offset = struct.unpack_from("<H", self.buf, self.vtable + entry)[0]
        return self.pos + offset if offset else None

    def _deref(self, slot):
        """Target of the uint32 relative offset stored in SLOT, or None."""
        at = self._field(slot)
        if at is None:
            return None
        return at + struct.unpack_from("<I", self.buf, at)[0]

    def scalar(self, slot, fmt, default):
        at = self._field(slot)
        return default if at is None else struct.unpack_from("<" + fmt, self.buf, at)[0]

    def table(self, slot):
        at = self._deref(slot)
        return None if at is None else _Table(self.buf, at)

    def _vector(self, slot):
        """(position of the first element, length); (0, 0) when absent."""
        at = self._deref(slot)
        if at is None:
            return 0, 0
        return at + 4, struct.unpack_from("<I", self.buf, at)[0]

    def tables(self, slot):
        start, n = self._vector(slot)
        return [_Table(self.buf, p + struct.unpack_from("<I", self.buf, p)[0])
                for p in range(start, start + 4 * n, 4)]

    def array(self, slot, dtype):
        """Vector of scalars as a numpy array (a copy, little-endian)."""
        start, n = self._vector(slot)
        return np.frombuffer(self.buf, dtype=dtype, count=n, offset=start).copy()

    def string(self, slot):
        start, n = self._vector(slot)
        return bytes(self.buf[start:start + n]).decode("utf-8")


@dataclass(frozen=True)
class Tensor:
    name: str
    shape: tuple
    data: object  # numpy array of the constant, or None for activations


@dataclass(frozen=True)
class Operator:
    op: str
    inputs: tuple   # tensor indices; -1 marks an omitted optional input
    outputs: tuple
    options: dict


@dataclass(frozen=True)
class Graph:
    tensors: list
    operators: list
    inputs: tuple
    outputs: tuple


def _op_names(model):
    """OperatorCode table -> op name per opcode index.

    Writers before schema 3a only fill the int8 deprecated_builtin_code
    (slot 0); newer ones also fill the int32 builtin_code (slot 3) and keep
    the old field at 127 for codes that do not fit. The larger of the two is
    the real code either way.
    """
    names = []
    for code in model.tables(1):
        value = max(code.scalar(0, "b", 0), code.scalar(3, "i", 0))
        if value not in OPCODES:
            raise ValueError(f"unsupported TFLite operator code {value}")
        names.append(OPCODES[value])
    return names


def _tensor(table, buffers):
    shape = tuple(int(d) for d in table.array(0, "<i4"))
    buffer = buffers[table.scalar(2, "I", 0)]
    # Files over 2 GB keep data outside the FlatBuffer (offset, size fields).
    if buffer.scalar(1, "Q", 0):
        raise ValueError(f"tensor {table.string(3)}: external buffers unsupported")
    raw = buffer.array(0, np.uint8)
    data = None
    if raw.size:
        dtype = _DTYPES.get(table.scalar(1, "b", 0))
        if dtype is None:
            raise ValueError(f"tensor {table.string(3)}: unsupported type")
        data = raw.view(dtype).reshape(shape)
    return Tensor(table.string(3), shape, data)


def _options(table, op):
    """Decode the builtin_options union member for OP into a dict."""
    # The union takes two slots: 3 holds its type tag, 4 the table.
    options = table.table(4)
    if op == "RESHAPE":
        # new_shape may also (or only) come as the second input tensor.
        shape = () if options is None else options.array(0, "<i4")
        return {"new_shape": tuple(int(d) for d in shape)}
    fields = _OPTIONS.get(op, {})
    if options is None:
        return {name: default for name, (_, _, default) in fields.items()}
    return {name: options.scalar(slot, fmt, default)
            for name, (slot, fmt, default) in fields.items()}


def _operator(table, op_names):
    op = op_names[table.scalar(0, "I", 0)]
    return Operator(op, tuple(int(i) for i in table.array(1, "<i4")),
                    tuple(int(i) for i in table.array(2, "<i4")),
                    _options(table, op))


def read_tflite(path):
    """Parse the single subgraph of the TFLite file at PATH into a Graph."""
    with open(path, "rb") as f:
        buf = f.read()
    if buf[4:8] != b"TFL3":
        raise ValueError(f"{path}: not a TFLite schema v3 file")
    model = _Table(buf, struct.unpack_from("<I", buf, 0)[0])
    subgraphs = model.tables(2)
    if len(subgraphs) != 1:
        raise ValueError(f"{path}: expected one subgraph, found {len(subgraphs)}")
    graph = subgraphs[0]
    buffers = model.tables(4)
    op_names = _op_names(model)
    return Graph(tensors=[_tensor(t, buffers) for t in graph.tables(0)],
                 operators=[_operator(o, op_names) for o in graph.tables(3)],
                 inputs=tuple(int(i) for i in graph.array(1, "<i4")),
                 outputs=tuple(int(i) for i in graph.array(2, "<i4")))
