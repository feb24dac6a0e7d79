"""Generate veltair's benchmark model zoo as ONNX files with seeded random weights.

Six models are built op by op with onnx.helper: resnet50, googlenet, mobilenetv2,
efficientnet_b0, tiny_yolov2 and bert_base. Each comes in two variants of identical
structure, ops and opset:

  full   models/full/<name>/model.onnx + test_data_set_0/ (git-ignored): real sizes, for
         benchmarking and for checking the evaluator at full size.
  small  models/small/<name>/model.onnx (committed): reduced width/resolution/depth, plus
         test_data_set_0/{input,output}_N.pb (ONNX backend-test layout) with seeded inputs
         and the outputs of onnxruntime (CPU, graph optimisations off, one thread).

Parts of the graphs imitate real exporters: BatchNormalization kept after Conv, symbolic
batch dims (dim_param "batch") and PyTorch-style Shape->Gather->Unsqueeze->Concat->Reshape
subgraphs in resnet50, efficientnet_b0 and bert_base; opset 10 (Clip with attributes) in
mobilenetv2. Output is deterministic: the same command writes byte-identical files.

Usage: gen_zoo.py [--small | --full] [--out MODELS_DIR] [MODEL ...]
       (default: both variants of all models, into <repo>/models)
"""

from __future__ import annotations

import argparse
import collections
import math
import shutil
import statistics
import time
import zlib
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

FLOAT, INT64 = TensorProto.FLOAT, TensorProto.INT64
ROOT = Path(__file__).resolve().parent.parent


class Graph:
    """Small ONNX graph builder: weights become initializers drawn from a seeded RNG."""

    def __init__(self, name: str, opset: int, seed: int):
        self.name, self.opset = name, opset
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self._used = collections.Counter()

    def input(self, name: str, elem_type: int, shape: list) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, elem_type, shape))
        return name

    def output(self, value: str, name: str, elem_type: int, shape: list) -> None:
        """Declare `value` (an output of the last node) a graph output, renamed to `name`."""
        assert self.nodes[-1].output[0] == value, "graph outputs must come from the last node"
        self.nodes[-1].output[0] = name
        self.outputs.append(helper.make_tensor_value_info(name, elem_type, shape))

    def param(self, name: str, array: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(array, name))
        return name

    def normal(self, shape, std: float, mean: float = 0.0) -> np.ndarray:
        return (mean + std * self.rng.standard_normal(shape, dtype=np.float32)).astype(np.float32)

    def uniform(self, shape, low: float, high: float) -> np.ndarray:
        return self.rng.uniform(low, high, shape).astype(np.float32)

    def op(self, op_type: str, *inputs: str, scope: str = "", **attrs) -> str:
        """Append a single-output node named like PyTorch's exporter; returns its output."""
        base = f"/{scope}/{op_type}" if scope else f"/{op_type}"
        n = self._used[base]
        self._used[base] += 1
        name = base if n == 0 else f"{base}_{n}"
        out = f"{name}_output_0"
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=name, **attrs))
        return out

    def const(self, value, dtype=np.int64, scope: str = "") -> str:
        """A Constant node (how PyTorch exports literals such as axes and scalars)."""
        return self.op("Constant", scope=scope, value=numpy_helper.from_array(np.asarray(value, dtype)))

    def model(self) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, self.name, self.inputs, self.outputs, self.inits)
        return helper.make_model_gen_version(
            graph, opset_imports=[helper.make_opsetid("", self.opset)], producer_name="veltair-gen_zoo"
        )


# ---------------------------------------------------------------------------------------------
# Layer helpers. Conv weights use He init (std = sqrt(gain / fan_in)) and BatchNormalization
# stays near identity, so activations neither vanish nor explode (hidden rms stays ~0.2-20).


def conv(g: Graph, x, cin, cout, k, scope, stride=1, group=1, bias=False, gain=2.0, pads=None):
    fan_in = cin // group * k * k
    ins = [x, g.param(f"{scope}.weight", g.normal((cout, cin // group, k, k), math.sqrt(gain / fan_in)))]
    if bias:
        ins.append(g.param(f"{scope}.bias", g.normal((cout,), 0.01)))
    return g.op("Conv", *ins, scope=scope, kernel_shape=[k, k], strides=[stride, stride],
                pads=pads or [k // 2] * 4, group=group, dilations=[1, 1])


def batchnorm(g: Graph, x, c, scope, gamma=1.0):
    """Un-folded inference BatchNormalization; `gamma` scales the learned scale (residual branches
    use < 1 so that repeated residual additions do not blow up the activations)."""
    return g.op("BatchNormalization", x,
                g.param(f"{scope}.weight", gamma * g.uniform(c, 0.8, 1.2)),
                g.param(f"{scope}.bias", g.normal(c, 0.05)),
                g.param(f"{scope}.running_mean", g.normal(c, 0.05)),
                g.param(f"{scope}.running_var", g.uniform(c, 0.8, 1.2)),
                scope=scope, epsilon=1e-5)


def gemm(g: Graph, x, cin, cout, scope):
    """PyTorch Linear as exported: Gemm with weight [out, in] and transB=1."""
    return g.op("Gemm", x,
                g.param(f"{scope}.weight", g.normal((cout, cin), 1.0 / math.sqrt(cin))),
                g.param(f"{scope}.bias", g.normal(cout, 0.01)),
                scope=scope, alpha=1.0, beta=1.0, transB=1)


def silu(g: Graph, x, scope):
    return g.op("Mul", x, g.op("Sigmoid", x, scope=scope), scope=scope)


def unsqueeze(g: Graph, x, axes, scope):
    if g.opset >= 13:  # axes became an input in opset 13
        return g.op("Unsqueeze", x, g.const(axes, scope=scope), scope=scope)
    return g.op("Unsqueeze", x, scope=scope, axes=axes)


def dim(g: Graph, x, axis, scope):
    """x.size(axis) as a 1-D int64 tensor of length 1: Shape -> Gather -> Unsqueeze."""
    d = g.op("Gather", g.op("Shape", x, scope=scope), g.const(axis, scope=scope), scope=scope, axis=0)
    return unsqueeze(g, d, [0], scope)


def reshape_dyn(g: Graph, x, lead_axes, tail, scope):
    """x.view(x.size(a0), ..., *tail) the way PyTorch exports it: a Concat of Shape-derived
    dims and constants feeding Reshape."""
    parts = [dim(g, x, a, scope) for a in lead_axes] + [g.const(tail, scope=scope)]
    return g.op("Reshape", x, g.op("Concat", *parts, scope=scope, axis=0), scope=scope)


# ---------------------------------------------------------------------------------------------
# Models. Each builder fills a Graph from keyword-argument configs (see ZOO below).


def build_resnet50(g: Graph, res, stem, widths, blocks, classes):
    """ResNet-50 v1 (stride in the first 1x1 conv of a bottleneck), torchvision-style export."""
    x = g.input("input", FLOAT, ["batch", 3, res, res])
    x = g.op("Relu", batchnorm(g, conv(g, x, 3, stem, 7, "conv1", stride=2), stem, "bn1"), scope="relu")
    x = g.op("MaxPool", x, scope="maxpool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = stem
    for si, (width, n) in enumerate(zip(widths, blocks)):
        for bi in range(n):
            s, stride, cout = f"layer{si + 1}.{bi}", (2 if si > 0 and bi == 0 else 1), width * 4
            y = g.op("Relu", batchnorm(g, conv(g, x, cin, width, 1, f"{s}.conv1", stride), width, f"{s}.bn1"), scope=s)
            y = g.op("Relu", batchnorm(g, conv(g, y, width, width, 3, f"{s}.conv2"), width, f"{s}.bn2"), scope=s)
            y = batchnorm(g, conv(g, y, width, cout, 1, f"{s}.conv3"), cout, f"{s}.bn3", gamma=0.3)
            if stride != 1 or cin != cout:
                x = batchnorm(g, conv(g, x, cin, cout, 1, f"{s}.downsample.0", stride), cout, f"{s}.downsample.1")
            x, cin = g.op("Relu", g.op("Add", y, x, scope=s), scope=s), cout
    x = reshape_dyn(g, g.op("GlobalAveragePool", x, scope="avgpool"), [0], [-1], "flatten")
    g.output(gemm(g, x, cin, classes, "fc"), "logits", FLOAT, ["batch", classes])


def build_googlenet(g: Graph, res, stem, inception, pool_after, classes):
    """GoogLeNet / Inception v1 as converted from Caffe: biased convs, LRN, ceil-mode pools,
    Concat of the four inception branches, AveragePool, Dropout, Reshape, Gemm, Softmax.
    `pool_after` maps an inception module to the name of the stride-2 pool that follows it."""

    def conv_relu(x, cin, cout, k, scope, stride=1):
        return g.op("Relu", conv(g, x, cin, cout, k, scope, stride, bias=True), scope=scope)

    def pool(x, scope):
        return g.op("MaxPool", x, scope=scope, kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 0, 0], ceil_mode=1)

    def lrn(x, scope):
        return g.op("LRN", x, scope=scope, size=5, alpha=1e-4, beta=0.75, bias=1.0)

    c1, c2r, c2 = stem
    x = g.input("data_0", FLOAT, [1, 3, res, res])
    x = lrn(pool(conv_relu(x, 3, c1, 7, "conv1", stride=2), "pool1"), "norm1")
    x = conv_relu(conv_relu(x, c1, c2r, 1, "conv2_reduce"), c2r, c2, 3, "conv2")
    x, cin = pool(lrn(x, "norm2"), "pool2"), c2
    for name, (n1, n3r, n3, n5r, n5, npool) in inception.items():
        b1 = conv_relu(x, cin, n1, 1, f"{name}.1x1")
        b2 = conv_relu(conv_relu(x, cin, n3r, 1, f"{name}.3x3_reduce"), n3r, n3, 3, f"{name}.3x3")
        b3 = conv_relu(conv_relu(x, cin, n5r, 1, f"{name}.5x5_reduce"), n5r, n5, 5, f"{name}.5x5")
        b4 = g.op("MaxPool", x, scope=f"{name}.pool", kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1])
        b4 = conv_relu(b4, cin, npool, 1, f"{name}.pool_proj")
        x, cin = g.op("Concat", b1, b2, b3, b4, scope=name, axis=1), n1 + n3 + n5 + npool
        if name in pool_after:
            x = pool(x, pool_after[name])
    k = res // 32  # spatial size left after the five stride-2 stages (ceil-mode pooling)
    x = g.op("AveragePool", x, scope="pool5", kernel_shape=[k, k], strides=[1, 1], pads=[0, 0, 0, 0])
    x = g.op("Dropout", x, scope="pool5.drop", ratio=0.4)
    x = g.op("Reshape", x, g.param("pool5.flatten_shape", np.array([1, cin], np.int64)), scope="pool5")
    g.output(g.op("Softmax", gemm(g, x, cin, classes, "loss3.classifier"), scope="prob", axis=1),
             "prob_1", FLOAT, [1, classes])


def build_mobilenetv2(g: Graph, res, stem, settings, last, classes):
    """MobileNetV2 exported at opset 10: ReLU6 is Clip with min/max attributes."""

    def cbr(x, cin, cout, k, scope, stride=1, group=1, act=True, gamma=1.0):
        y = batchnorm(g, conv(g, x, cin, cout, k, f"{scope}.0", stride, group), cout, f"{scope}.1", gamma)
        return g.op("Clip", y, scope=scope, min=0.0, max=6.0) if act else y

    x = cbr(g.input("input", FLOAT, [1, 3, res, res]), 3, stem, 3, "features.0", stride=2)
    cin, idx = stem, 1
    for t, c, n, s in settings:
        for i in range(n):
            scope, stride, hidden = f"features.{idx}.conv", (s if i == 0 else 1), cin * t
            y, j = x, 0
            if t != 1:
                y, j = cbr(y, cin, hidden, 1, f"{scope}.0"), 1
            y = cbr(y, hidden, hidden, 3, f"{scope}.{j}", stride, group=hidden)
            residual = stride == 1 and cin == c
            y = cbr(y, hidden, c, 1, f"{scope}.{j + 1}", act=False, gamma=0.3 if residual else 1.0)
            x = g.op("Add", x, y, scope=f"features.{idx}") if residual else y
            cin, idx = c, idx + 1
    x = cbr(x, cin, last, 1, f"features.{idx}")
    x = g.op("Flatten", g.op("GlobalAveragePool", x, scope="pool"), scope="flatten", axis=1)
    g.output(gemm(g, x, last, classes, "classifier.1"), "output", FLOAT, [1, classes])


def build_efficientnet_b0(g: Graph, res, stem, stages, head, classes):
    """EfficientNet-B0 (torchvision layout): MBConv blocks with SiLU = x * Sigmoid(x) and
    squeeze-excite GlobalAveragePool -> Conv -> SiLU -> Conv -> Sigmoid -> Mul."""

    def cbs(x, cin, cout, k, scope, stride=1, group=1, act=True, gain=2.0, gamma=1.0):
        y = batchnorm(g, conv(g, x, cin, cout, k, f"{scope}.0", stride, group, gain=gain), cout, f"{scope}.1", gamma)
        return silu(g, y, scope) if act else y

    x = cbs(g.input("images", FLOAT, ["batch", 3, res, res]), 3, stem, 3, "features.0", stride=2)
    cin = stem
    for si, (t, k, s, c, n) in enumerate(stages):
        for i in range(n):
            scope, stride, hidden, sq = f"features.{si + 1}.{i}.block", (s if i == 0 else 1), cin * t, max(1, cin // 4)
            y, j = x, 0
            if t != 1:
                y, j = cbs(y, cin, hidden, 1, f"{scope}.0"), 1
            y = cbs(y, hidden, hidden, k, f"{scope}.{j}", stride, group=hidden)
            se = f"{scope}.{j + 1}"
            z = g.op("GlobalAveragePool", y, scope=se)
            z = silu(g, conv(g, z, hidden, sq, 1, f"{se}.fc1", bias=True), se)
            z = g.op("Sigmoid", conv(g, z, sq, hidden, 1, f"{se}.fc2", bias=True), scope=se)
            y = g.op("Mul", y, z, scope=se)
            residual = stride == 1 and cin == c
            # gain 8: the SiLU and the ~0.5 squeeze-excite gate shrink the signal ~4x in power.
            y = cbs(y, hidden, c, 1, f"{scope}.{j + 2}", act=False, gain=8.0, gamma=0.3 if residual else 1.0)
            x = g.op("Add", y, x, scope=f"features.{si + 1}.{i}") if residual else y
            cin = c
    x = cbs(x, cin, head, 1, f"features.{len(stages) + 1}")
    x = reshape_dyn(g, g.op("GlobalAveragePool", x, scope="avgpool"), [0], [-1], "flatten")
    g.output(gemm(g, x, head, classes, "classifier.1"), "logits", FLOAT, ["batch", classes])


def build_tiny_yolov2(g: Graph, res, widths, out_channels):
    """Tiny YOLOv2 (VOC): Conv -> BatchNormalization -> LeakyRelu(0.1), 2x2 max pools, the
    last of them stride 1 with end padding so the 13x13 grid is kept, then a 1x1 detector."""
    x, cin = g.input("image", FLOAT, [1, 3, res, res]), 3
    for i, c in enumerate(widths):
        x = conv(g, x, cin, c, 3, f"conv{i + 1}", gain=2.0 / 1.01)
        x = g.op("LeakyRelu", batchnorm(g, x, c, f"bn{i + 1}"), scope=f"leaky{i + 1}", alpha=0.1)
        if i < 5:
            x = g.op("MaxPool", x, scope=f"pool{i + 1}", kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 0, 0])
        elif i == 5:
            x = g.op("MaxPool", x, scope=f"pool{i + 1}", kernel_shape=[2, 2], strides=[1, 1], pads=[0, 0, 1, 1])
        cin = c
    x = conv(g, x, cin, out_channels, 1, f"conv{len(widths) + 1}", bias=True, gain=1.0)
    g.output(x, "grid", FLOAT, [1, out_channels, res // 32, res // 32])


def build_bert_base(g: Graph, layers, hidden, heads, inter, seq, vocab, max_pos):
    """BERT encoder as exported from HuggingFace: Gather embeddings (position ids sliced from a
    buffer, token types from ConstantOfShape), additive mask from attention_mask, per-layer
    MatMul/Add projections, head split/merge through Shape-driven Reshapes, Erf GELU."""
    hd = hidden // heads

    def lin(x, cin, cout, scope):
        w = g.param(f"{scope}.weight", g.normal((cin, cout), 0.02))
        return g.op("Add", g.param(f"{scope}.bias", g.normal(cout, 0.02)), g.op("MatMul", x, w, scope=scope), scope=scope)

    def layernorm(x, scope):
        return g.op("LayerNormalization", x,
                    g.param(f"{scope}.weight", g.normal(hidden, 0.05, mean=1.0)),
                    g.param(f"{scope}.bias", g.normal(hidden, 0.02)),
                    scope=scope, axis=-1, epsilon=1e-12)

    def split_heads(x, perm, scope):  # [b, s, hidden] -> [b, heads, s, hd] (perm chooses layout)
        return g.op("Transpose", reshape_dyn(g, x, [0, 1], [heads, hd], scope), scope=scope, perm=perm)

    ids = g.input("input_ids", INT64, ["batch", seq])
    mask = g.input("attention_mask", INT64, ["batch", seq])

    e = "embeddings"
    words = g.op("Gather", g.param(f"{e}.word_embeddings.weight", g.normal((vocab, hidden), 0.02)), ids, scope=e)
    pos_ids = g.op("Slice", g.param(f"{e}.position_ids", np.arange(max_pos, dtype=np.int64)[None]),
                   g.const([0], scope=e), dim(g, ids, 1, e), g.const([1], scope=e), scope=e)
    positions = g.op("Gather", g.param(f"{e}.position_embeddings.weight", g.normal((max_pos, hidden), 0.02)),
                     pos_ids, scope=e)
    type_ids = g.op("ConstantOfShape", g.op("Shape", ids, scope=e), scope=e,
                    value=numpy_helper.from_array(np.zeros(1, np.int64)))
    types = g.op("Gather", g.param(f"{e}.token_type_embeddings.weight", g.normal((2, hidden), 0.02)), type_ids, scope=e)
    x = layernorm(g.op("Add", g.op("Add", words, types, scope=e), positions, scope=e), f"{e}.LayerNorm")

    m = g.op("Cast", unsqueeze(g, mask, [1, 2], "mask"), scope="mask", to=FLOAT)
    m = g.op("Mul", g.op("Sub", g.const(1.0, np.float32, "mask"), m, scope="mask"),
             g.const(-10000.0, np.float32, "mask"), scope="mask")

    for i in range(layers):
        s = f"encoder.layer.{i}"
        a = f"{s}.attention.self"
        q = split_heads(lin(x, hidden, hidden, f"{a}.query"), [0, 2, 1, 3], f"{a}.query")
        k = split_heads(lin(x, hidden, hidden, f"{a}.key"), [0, 2, 3, 1], f"{a}.key")
        v = split_heads(lin(x, hidden, hidden, f"{a}.value"), [0, 2, 1, 3], f"{a}.value")
        scores = g.op("Div", g.op("MatMul", q, k, scope=a), g.const(math.sqrt(hd), np.float32, a), scope=a)
        probs = g.op("Softmax", g.op("Add", scores, m, scope=a), scope=a, axis=-1)
        ctx = g.op("Transpose", g.op("MatMul", probs, v, scope=a), scope=a, perm=[0, 2, 1, 3])
        ctx = reshape_dyn(g, ctx, [0, 1], [hidden], a)
        o = f"{s}.attention.output"
        x = layernorm(g.op("Add", lin(ctx, hidden, hidden, f"{o}.dense"), x, scope=o), f"{o}.LayerNorm")
        f = f"{s}.intermediate"
        h = lin(x, hidden, inter, f"{f}.dense")
        erf = g.op("Erf", g.op("Div", h, g.const(math.sqrt(2.0), np.float32, f), scope=f), scope=f)
        h = g.op("Mul", g.op("Mul", h, g.op("Add", erf, g.const(1.0, np.float32, f), scope=f), scope=f),
                 g.const(0.5, np.float32, f), scope=f)
        o = f"{s}.output"
        x = g.op("Add", lin(h, inter, hidden, f"{o}.dense"), x, scope=o)
        x = layernorm(x, f"{o}.LayerNorm")
    g.output(x, "last_hidden_state", FLOAT, ["batch", seq, hidden])


def inception_table(div: int) -> dict:
    """The nine GoogLeNet inception modules (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj),
    channel counts divided by `div`."""
    full = {
        "inception_3a": (64, 96, 128, 16, 32, 32), "inception_3b": (128, 128, 192, 32, 96, 64),
        "inception_4a": (192, 96, 208, 16, 48, 64), "inception_4b": (160, 112, 224, 24, 64, 64),
        "inception_4c": (128, 128, 256, 24, 64, 64), "inception_4d": (112, 144, 288, 32, 64, 64),
        "inception_4e": (256, 160, 320, 32, 128, 128), "inception_5a": (256, 160, 320, 32, 128, 128),
        "inception_5b": (384, 192, 384, 48, 128, 128),
    }
    return {k: tuple(max(2, c // div) for c in v) for k, v in full.items()}


# name -> (builder, opset, full config, small config)
ZOO = {
    "resnet50": (build_resnet50, 13,
                 dict(res=224, stem=64, widths=(64, 128, 256, 512), blocks=(3, 4, 6, 3), classes=1000),
                 dict(res=64, stem=8, widths=(8, 16, 32, 48), blocks=(2, 1, 2, 1), classes=10)),
    "googlenet": (build_googlenet, 11,
                  dict(res=224, stem=(64, 64, 192), inception=inception_table(1),
                       pool_after={"inception_3b": "pool3", "inception_4e": "pool4"}, classes=1000),
                  dict(res=96, stem=(8, 8, 24), inception=inception_table(8),
                       pool_after={"inception_3b": "pool3", "inception_4e": "pool4"}, classes=10)),
    "mobilenetv2": (build_mobilenetv2, 10,
                    dict(res=224, stem=32, settings=[(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                                                     (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)],
                         last=1280, classes=1000),
                    dict(res=64, stem=8, settings=[(1, 8, 1, 1), (6, 8, 2, 2), (6, 16, 2, 2), (6, 16, 1, 2),
                                                   (6, 24, 2, 1), (6, 32, 1, 2), (6, 48, 1, 1)],
                         last=128, classes=10)),
    "efficientnet_b0": (build_efficientnet_b0, 13,
                        # stages: (expand ratio, kernel, stride, out channels, repeats)
                        dict(res=224, stem=32, stages=[(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2),
                                                       (6, 3, 2, 80, 3), (6, 5, 1, 112, 3), (6, 5, 2, 192, 4),
                                                       (6, 3, 1, 320, 1)],
                             head=1280, classes=1000),
                        dict(res=64, stem=8, stages=[(1, 3, 1, 8, 1), (6, 3, 2, 8, 2), (6, 5, 2, 16, 1),
                                                     (6, 3, 2, 16, 1), (6, 5, 1, 24, 2), (6, 5, 2, 32, 1),
                                                     (6, 3, 1, 48, 1)],
                             head=128, classes=10)),
    "tiny_yolov2": (build_tiny_yolov2, 13,
                    dict(res=416, widths=(16, 32, 64, 128, 256, 512, 1024, 1024), out_channels=125),
                    dict(res=96, widths=(4, 8, 16, 32, 32, 64, 64, 64), out_channels=125)),
    "bert_base": (build_bert_base, 17,
                  dict(layers=12, hidden=768, heads=12, inter=3072, seq=128, vocab=30522, max_pos=512),
                  dict(layers=2, hidden=64, heads=4, inter=256, seq=16, vocab=512, max_pos=64)),
}


# ---------------------------------------------------------------------------------------------
# Generation, checking and reporting.


def seed_of(*parts: str) -> int:
    return zlib.crc32("/".join(parts).encode())


def sample_inputs(model: onnx.ModelProto, cfg: dict, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Seeded feeds for every graph input (symbolic dims become 1): images ~ N(0, 1), token ids
    uniform in the vocabulary, attention mask of ones with the last quarter zeroed (padding)."""
    feeds = {}
    for vi in model.graph.input:
        shape = [d.dim_value or 1 for d in vi.type.tensor_type.shape.dim]
        if vi.name == "input_ids":
            feeds[vi.name] = rng.integers(0, cfg["vocab"], shape, dtype=np.int64)
        elif vi.name == "attention_mask":
            mask = np.ones(shape, np.int64)
            mask[..., shape[-1] - shape[-1] // 4:] = 0
            feeds[vi.name] = mask
        else:
            feeds[vi.name] = rng.standard_normal(shape, dtype=np.float32)
    return feeds


def session(model_bytes: bytes, optimize: bool) -> ort.InferenceSession:
    """Single-threaded CPU session; optimize=False (ORT_DISABLE_ALL) keeps numerics plain."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    so.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                   else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


def check_outputs(name: str, outputs: list[np.ndarray]) -> str:
    """Fail on degenerate outputs (non-finite or constant); return a one-line stats summary."""
    stats = []
    for out in outputs:
        if not np.all(np.isfinite(out)) or float(out.std()) == 0.0:
            raise SystemExit(f"{name}: degenerate output (finite={np.all(np.isfinite(out))}, std={out.std()})")
        stats.append(f"mean {out.mean():+.3g} std {out.std():.3g} min {out.min():+.3g} max {out.max():+.3g}")
    return "; ".join(stats)


def describe(vis) -> str:
    def dims(vi):
        return ",".join(d.dim_param or str(d.dim_value) for d in vi.type.tensor_type.shape.dim)
    return " ".join(f"{vi.name}:{helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type)}[{dims(vi)}]"
                    for vi in vis)


def build(name: str, variant: str) -> tuple[onnx.ModelProto, dict]:
    builder, opset, full_cfg, small_cfg = ZOO[name]
    cfg = full_cfg if variant == "full" else small_cfg
    g = Graph(name, opset, seed_of(name, variant, "weights"))
    builder(g, **cfg)
    model = g.model()
    onnx.checker.check_model(model, full_check=True)
    return model, cfg


def write_test_data(model_dir: Path, model: onnx.ModelProto, feeds: dict, outputs: list) -> None:
    """ONNX backend-test layout: test_data_set_0/{input,output}_N.pb in graph I/O order, each a
    TensorProto named after its graph input/output."""
    data_dir = model_dir / "test_data_set_0"
    data_dir.mkdir(parents=True)
    for i, vi in enumerate(model.graph.input):
        (data_dir / f"input_{i}.pb").write_bytes(numpy_helper.from_array(feeds[vi.name], vi.name).SerializeToString())
    for i, (vi, out) in enumerate(zip(model.graph.output, outputs)):
        (data_dir / f"output_{i}.pb").write_bytes(numpy_helper.from_array(out, vi.name).SerializeToString())


def median_ms(sess: ort.InferenceSession, feeds: dict, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        sess.run(None, feeds)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def generate(name: str, variant: str, out_dir: Path) -> None:
    """Build, check, run and write one model; print its summary."""
    t0 = time.perf_counter()
    model, cfg = build(name, variant)
    feeds = sample_inputs(model, cfg, np.random.default_rng(seed_of(name, variant, "inputs")))
    data = model.SerializeToString()
    model_dir = out_dir / variant / name
    shutil.rmtree(model_dir, ignore_errors=True)
    outputs = session(data, optimize=False).run(None, feeds)
    write_test_data(model_dir, model, feeds, outputs)
    path, timing = model_dir / "model.onnx", ""
    if variant == "full":
        sess = session(data, optimize=True)
        sess.run(None, feeds)  # warm-up
        timing = f", ORT 1-thread median {median_ms(sess, feeds):.1f} ms"
    path.write_bytes(data)
    params = sum(int(np.prod(t.dims)) for t in model.graph.initializer if t.data_type == FLOAT)
    print(f"{name} [{variant}] opset {model.opset_import[0].version} (IR {model.ir_version}): "
          f"{params / 1e6:.3f}M float params, {len(model.graph.node)} nodes, {len(data) / 2**20:.2f} MiB{timing} "
          f"-> {path} ({time.perf_counter() - t0:.1f}s)\n"
          f"    in  {describe(model.graph.input)}\n    out {describe(model.graph.output)}\n"
          f"    ops {','.join(sorted({n.op_type for n in model.graph.node}))}\n"
          f"    output stats: {check_outputs(name, outputs)}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    which = ap.add_mutually_exclusive_group()
    which.add_argument("--small", action="store_true", help="only the small models + test data")
    which.add_argument("--full", action="store_true", help="only the full-size models")
    ap.add_argument("--out", type=Path, default=ROOT / "models", help="models directory (default: %(default)s)")
    ap.add_argument("models", nargs="*", metavar="MODEL", help=f"subset of {', '.join(ZOO)} (default: all)")
    args = ap.parse_args()
    if unknown := set(args.models) - set(ZOO):
        ap.error(f"unknown model(s): {', '.join(sorted(unknown))}")
    variants = ["small"] if args.small else ["full"] if args.full else ["small", "full"]
    for variant in variants:
        for name in args.models or ZOO:
            generate(name, variant, args.out.resolve())


if __name__ == "__main__":
    main()
