"""Keras layer cases for test_keras.py: each case is a small subgraph (its own inputs, one
output) of ONE Functional model, so a suite compiles once. Built with the real Keras
(KERAS_BACKEND=torch); weights are set to random values so zero biases and identity
BatchNormalization statistics hide nothing."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "torch")

ACTIVATIONS = ["relu", "relu6", "sigmoid", "tanh", "softmax", "log_softmax", "softplus", "softsign", "elu",
               "selu", "celu", "exponential", "swish", "silu", "gelu", "hard_sigmoid", "hard_silu",
               "leaky_relu", "mish", "log_sigmoid", "hard_tanh", "tanh_shrink", "soft_shrink",
               "hard_shrink", "squareplus", "linear"]


@dataclass
class Case:
    name: str
    shapes: list[tuple[int, ...]]
    build: Callable  # (keras, inputs) -> output tensor, or a list of them
    dtype: str = "float32"
    high: int = 0  # int inputs: values in [0, high)
    rtol: float = 1e-4
    atol: float = 1e-5
    n_out: int = 1


@dataclass
class Suite:
    cases: list[Case] = field(default_factory=list)

    def add(self, name: str, shapes, build, **kw) -> None:
        self.cases.append(Case(name, [tuple(s) for s in shapes], build, **kw))

    def layer(self, name: str, shape, make, **kw) -> None:
        """A case of one layer on one input: `make(keras)` gives the layer."""
        self.add(name, [shape], lambda k, xs: make(k)(xs[0]), **kw)

    def model(self):
        import keras
        inputs, outputs = [], []
        for c in self.cases:
            xs = [keras.Input(s, name=f"{c.name}_x{i}", dtype=c.dtype) for i, s in enumerate(c.shapes)]
            inputs += xs
            ys = c.build(keras, xs)
            ys = ys if isinstance(ys, list) else [ys]
            c.n_out = len(ys)
            outputs += [keras.layers.Identity(name=f"out_{c.name}_{j}")(y) for j, y in enumerate(ys)]
        m = keras.Model(inputs, outputs, name="suite")
        randomize(m)
        return m

    def feeds(self, batch: int, seed: int) -> list[np.ndarray]:
        rng = np.random.default_rng(seed)
        out = []
        for c in self.cases:
            for s in c.shapes:
                if c.dtype.startswith("int"):
                    out.append(rng.integers(0, c.high, (batch, *s)).astype(c.dtype))
                else:
                    out.append(rng.normal(0, 1, (batch, *s)).astype(c.dtype))
        return out


def randomize(model, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for w in model.weights:
        shape = tuple(w.shape)
        if "variance" in w.path:
            w.assign(rng.uniform(0.5, 1.5, shape).astype("float32"))
        elif "embeddings" not in w.path:
            w.assign((rng.normal(0, 0.5, shape)).astype("float32"))


def layer_suite() -> Suite:
    s = Suite()
    L = s.layer
    # core and activations
    L("dense_relu", (6,), lambda k: k.layers.Dense(4, activation="relu"))
    L("dense_3d_nobias", (3, 6), lambda k: k.layers.Dense(4, use_bias=False, activation="tanh"))
    for a in ACTIVATIONS:
        L(f"act_{a}", (7,), lambda k, a=a: k.layers.Activation(a))
    L("relu_max", (7,), lambda k: k.layers.ReLU(max_value=0.5))
    L("relu_slope", (7,), lambda k: k.layers.ReLU(negative_slope=0.1))
    L("leaky_relu", (7,), lambda k: k.layers.LeakyReLU(negative_slope=0.2))
    L("elu", (7,), lambda k: k.layers.ELU(alpha=0.7))
    L("prelu", (3, 4), lambda k: k.layers.PReLU())
    L("prelu_shared", (4, 4, 3), lambda k: k.layers.PReLU(shared_axes=[1, 2]))
    L("softmax_axis1", (3, 4), lambda k: k.layers.Softmax(axis=1))
    L("bn_dense", (6,), lambda k: k.layers.BatchNormalization())
    L("bn_image", (5, 5, 3), lambda k: k.layers.BatchNormalization(epsilon=0.01))
    L("bn_plain", (5, 3), lambda k: k.layers.BatchNormalization(center=False, scale=False))
    L("bn_axis1", (3, 4), lambda k: k.layers.BatchNormalization(axis=1))
    L("layer_norm", (3, 6), lambda k: k.layers.LayerNormalization())
    L("layer_norm_2axes", (3, 4, 5), lambda k: k.layers.LayerNormalization(axis=[2, 3], center=False))
    L("embedding", (5,), lambda k: k.layers.Embedding(10, 4), dtype="int32", high=10)
    for n in ("Dropout", "GaussianNoise", "GaussianDropout", "AlphaDropout"):
        L(n.lower(), (6,), lambda k, n=n: getattr(k.layers, n)(0.3))
    L("rescaling", (4, 3), lambda k: k.layers.Rescaling(1 / 255.0, offset=-0.5))
    L("spatial_dropout", (4, 4, 3), lambda k: k.layers.SpatialDropout2D(0.3))
    # convolutions
    L("conv1d_same_s2", (10, 3), lambda k: k.layers.Conv1D(4, 3, strides=2, padding="same"))
    L("conv1d_causal_d2", (10, 3), lambda k: k.layers.Conv1D(4, 3, padding="causal", dilation_rate=2,
                                                             activation="relu"))
    L("conv2d_valid", (7, 7, 3), lambda k: k.layers.Conv2D(4, (3, 2), strides=(2, 1)))
    L("conv2d_same_even", (8, 8, 3), lambda k: k.layers.Conv2D(4, 4, strides=2, padding="same"))
    L("conv2d_dilated", (9, 9, 2), lambda k: k.layers.Conv2D(3, 3, dilation_rate=2, padding="same",
                                                             use_bias=False))
    L("conv2d_groups", (6, 6, 4), lambda k: k.layers.Conv2D(6, 3, groups=2, activation="sigmoid"))
    L("conv2d_channels_first", (3, 6, 6), lambda k: k.layers.Conv2D(4, 3, data_format="channels_first"))
    L("conv3d", (5, 5, 5, 2), lambda k: k.layers.Conv3D(3, 3, padding="same", strides=2))
    L("conv2d_transpose_same", (4, 4, 3), lambda k: k.layers.Conv2DTranspose(2, 3, strides=2, padding="same"))
    L("conv2d_transpose_valid", (4, 4, 3), lambda k: k.layers.Conv2DTranspose(2, 3, strides=2))
    L("conv2d_transpose_k1", (4, 4, 3), lambda k: k.layers.Conv2DTranspose(2, 1, strides=2))
    L("conv1d_transpose", (5, 3), lambda k: k.layers.Conv1DTranspose(2, 4, strides=2, padding="same"))
    L("depthwise", (6, 6, 3), lambda k: k.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same"))
    L("depthwise_s2", (7, 7, 3), lambda k: k.layers.DepthwiseConv2D(3, strides=2, use_bias=False))
    L("separable", (6, 6, 3), lambda k: k.layers.SeparableConv2D(4, 3, depth_multiplier=2, padding="same",
                                                                  activation="relu"))
    L("separable1d", (8, 3), lambda k: k.layers.SeparableConv1D(4, 3))
    # pools
    L("maxpool1d", (9, 3), lambda k: k.layers.MaxPooling1D(2))
    L("avgpool1d_same", (9, 3), lambda k: k.layers.AveragePooling1D(3, strides=2, padding="same"))
    L("maxpool2d_same", (7, 7, 3), lambda k: k.layers.MaxPooling2D(3, strides=2, padding="same"))
    L("avgpool2d", (6, 6, 3), lambda k: k.layers.AveragePooling2D((2, 3)))
    L("avgpool2d_same", (5, 5, 3), lambda k: k.layers.AveragePooling2D(2, padding="same"))
    L("maxpool3d", (4, 4, 4, 2), lambda k: k.layers.MaxPooling3D(2))
    L("avgpool3d", (4, 4, 4, 2), lambda k: k.layers.AveragePooling3D(2, strides=1))
    L("gap1d", (5, 3), lambda k: k.layers.GlobalAveragePooling1D())
    L("gmp1d", (5, 3), lambda k: k.layers.GlobalMaxPooling1D(keepdims=True))
    L("gap2d", (4, 4, 3), lambda k: k.layers.GlobalAveragePooling2D())
    L("gmp2d", (4, 4, 3), lambda k: k.layers.GlobalMaxPooling2D())
    L("gap3d", (3, 3, 3, 2), lambda k: k.layers.GlobalAveragePooling3D(keepdims=True))
    L("gmp3d", (3, 3, 3, 2), lambda k: k.layers.GlobalMaxPooling3D())
    # spatial
    L("upsampling1d", (4, 3), lambda k: k.layers.UpSampling1D(3))
    L("upsampling2d", (3, 4, 2), lambda k: k.layers.UpSampling2D((2, 3)))
    L("upsampling2d_bilinear", (3, 4, 2), lambda k: k.layers.UpSampling2D(2, interpolation="bilinear"))
    L("upsampling3d", (2, 3, 2, 2), lambda k: k.layers.UpSampling3D(2))
    L("zero_padding1d", (4, 3), lambda k: k.layers.ZeroPadding1D((1, 2)))
    L("zero_padding2d", (3, 4, 2), lambda k: k.layers.ZeroPadding2D(((1, 0), (2, 1))))
    L("zero_padding3d", (2, 3, 2, 2), lambda k: k.layers.ZeroPadding3D(1))
    L("cropping1d", (6, 3), lambda k: k.layers.Cropping1D((1, 2)))
    L("cropping2d", (6, 5, 2), lambda k: k.layers.Cropping2D(((1, 2), (0, 1))))
    L("cropping3d", (4, 4, 4, 2), lambda k: k.layers.Cropping3D(1))
    # shape
    L("flatten", (3, 4, 2), lambda k: k.layers.Flatten())
    L("reshape", (3, 4, 2), lambda k: k.layers.Reshape((4, 6)))
    L("permute", (3, 4, 2), lambda k: k.layers.Permute((3, 1, 2)))
    L("repeat_vector", (5,), lambda k: k.layers.RepeatVector(3))
    # merge
    two = [(3, 4), (3, 4)]
    s.add("concatenate", [(3, 4), (3, 2)], lambda k, xs: k.layers.Concatenate()(xs))
    s.add("concatenate_axis1", [(3, 4), (2, 4)], lambda k, xs: k.layers.Concatenate(axis=1)(xs))
    s.add("add3", [(3, 4)] * 3, lambda k, xs: k.layers.Add()(xs))
    for n in ("Subtract", "Multiply", "Average", "Maximum", "Minimum"):
        s.add(n.lower(), two, lambda k, xs, n=n: getattr(k.layers, n)()(xs))
    s.add("dot_2d", [(5,), (5,)], lambda k, xs: k.layers.Dot(axes=1)(xs))
    s.add("dot_3d", [(3, 4), (2, 4)], lambda k, xs: k.layers.Dot(axes=(2, 2))(xs))
    s.add("dot_3d_axis1", [(4, 3), (4, 2)], lambda k, xs: k.layers.Dot(axes=1, normalize=True)(xs))
    recurrent_cases(s)
    # a shared layer called on two inputs, two outputs
    def shared(k, xs):
        d = k.layers.Dense(5, activation="relu")
        ha, hb = d(xs[0]), k.layers.GlobalAveragePooling1D()(d(xs[1]))
        return [k.layers.Dense(2)(k.layers.Concatenate()([ha, hb])), k.layers.Multiply()([ha, hb])]
    s.add("shared_dense_two_outputs", [(6,), (4, 6)], shared)
    return s


def recurrent_cases(s: Suite) -> None:
    L, seq = s.layer, (5, 3)
    L("simple_rnn", seq, lambda k: k.layers.SimpleRNN(4))
    L("simple_rnn_relu_seq", seq, lambda k: k.layers.SimpleRNN(4, activation="relu", return_sequences=True))
    L("gru_reset_after", seq, lambda k: k.layers.GRU(4))
    L("gru_reset_before_seq", seq, lambda k: k.layers.GRU(4, reset_after=False, return_sequences=True))
    L("gru_backwards_seq", seq, lambda k: k.layers.GRU(4, go_backwards=True, return_sequences=True))
    L("lstm", seq, lambda k: k.layers.LSTM(4))
    L("lstm_seq", seq, lambda k: k.layers.LSTM(4, return_sequences=True))
    L("lstm_backwards", seq, lambda k: k.layers.LSTM(4, go_backwards=True))
    L("lstm_backwards_seq", seq, lambda k: k.layers.LSTM(4, go_backwards=True, return_sequences=True))
    L("lstm_hard_sigmoid_nobias", seq, lambda k: k.layers.LSTM(3, recurrent_activation="hard_sigmoid",
                                                               use_bias=False))
    s.add("lstm_return_state", [seq], lambda k, xs: k.layers.Concatenate()(k.layers.LSTM(4, return_state=True)(xs[0])))
    L("bidirectional_lstm_seq", seq, lambda k: k.layers.Bidirectional(k.layers.LSTM(4, return_sequences=True)))
    L("bidirectional_gru_sum", seq, lambda k: k.layers.Bidirectional(k.layers.GRU(4), merge_mode="sum"))
    L("bidirectional_rnn_ave_seq", seq, lambda k: k.layers.Bidirectional(
        k.layers.SimpleRNN(4, return_sequences=True), merge_mode="ave"))
    L("bidirectional_lstm_mul", seq, lambda k: k.layers.Bidirectional(k.layers.LSTM(4), merge_mode="mul"))
    s.add("embedding_lstm", [(6,)], lambda k, xs: k.layers.LSTM(3)(k.layers.Embedding(8, 4)(xs[0])),
          dtype="int32", high=8)
