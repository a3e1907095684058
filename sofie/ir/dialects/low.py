"""The `low` dialect: allocations, views and kernel calls in destination-passing style.

Lowering picks every kernel and its parameters; `low.alloc` values are the tensors and kernel
scratch it needs, sized by their types (expressions in the dim symbols). The `plan-memory` pass
then turns each allocation into a `low.buffer` at an arena offset; after it the C++ printer has
nothing left to decide. A kernel's operands are its inputs, then the outputs it writes (`:out`).
"""

from __future__ import annotations

from sofie.errors import SofieError
from sofie.ir.core import Operation
from sofie.ir.dialects.graph.nn import CONV_ATTRS
from sofie.ir.dialects.scalar import parse_body, result_type, variables
from sofie.ir.registry import CONSTANT_LIKE, INPLACE, PURE, VIEW, Attr, OpDef, register
from sofie.ir.run_time_dims import has_run_time_dims, table
from sofie.ir.types import FLOATS, NUMERIC, Dim, TensorType, dim_factors

# a kernel's activation epilogue: a scalar body over x0 (the accumulated value), "" for none
EPILOGUE = {"epilogue": Attr("str", "")}


class Storage(OpDef):
    """Defines a value by where its bytes live; its type comes from the text, not a rule."""

    def infer(self, op: Operation) -> list[TensorType]:
        return [r.type for r in op.results]


@register
class Weight(Storage):
    name = "low.weight"
    attrs = {"ref": Attr("str"), "offset": Attr("int")}
    traits = frozenset({PURE, CONSTANT_LIKE})
    doc = "read-only bytes at `offset` in the weights file"


@register
class Alloc(Storage):
    name = "low.alloc"
    traits = frozenset()  # each one is its own storage: never merged by CSE
    doc = "storage for a tensor or a kernel's scratch, not yet placed (plan-memory places it)"


@register
class Buffer(Storage):
    name = "low.buffer"
    attrs = {"offset": Attr("ints")}
    traits = frozenset()
    doc = ("arena bytes at sum(offset[k] * term k of the function's `arena_terms`), each term a "
           "product of dim-symbol maxima (term 0 is 1)")


@register
class Output(Storage):
    name = "low.output"
    attrs = {"index": Attr("int")}
    traits = frozenset()
    doc = "the caller's output pointer number `index`"


@register
class View(OpDef):
    name = "low.view"
    operands = "source"
    traits = frozenset({PURE, VIEW})
    doc = "the same bytes under another shape"

    def infer(self, op: Operation) -> list[TensorType]:
        return [r.type for r in op.results]

    def verify(self, op: Operation) -> None:
        src, dst = op.source.type, op.results[0].type
        if has_run_time_dims(dst, table(op.parent)):
            return  # low.bind_dims checks at run time that the counts agree
        if (src.static_size(), sorted(src.symbols)) != (dst.static_size(), sorted(dst.symbols)):
            raise SofieError(f"{op.describe()}: view changes the element count ({src} -> {dst})")


class Kernel(OpDef):
    """A kernel call writing its `:out` operand(s); no SSA results.

    `dtypes`: the element types the runtime kernel is instantiated for. Every operand of the
    call (scratch included) has the element type of its output, one of these; None for data
    movement, which takes any type. Lowering refuses other types naming the graph op
    (`LoweringContext.create`), the verifier refuses them in low IR text, so the backend never
    prints a call that does not compile."""

    traits = frozenset()
    results = 0
    dtypes: tuple[str, ...] | None = None
    # integer operands read at run time (an axis, sequence lengths): name -> the types allowed
    index_operands: dict[str, tuple[str, ...]] = {}

    def infer(self, op: Operation) -> list[TensorType]:
        return []

    def verify(self, op: Operation) -> None:
        written = op.written_operands()
        if self.dtypes is None or not written:
            return
        indices = set()
        for name, types in self.index_operands.items():
            v = op.operand(name)
            if v is not None and v.type.dtype not in types:
                raise SofieError(f"{op.describe()}: {name} is {v.type.dtype}, expected {' or '.join(types)}")
            indices.add(id(v))
        dt = written[0].type.dtype
        if dt not in self.dtypes:
            raise SofieError(f"{op.describe()}: no kernel for element type {dt} "
                             f"(supported: {', '.join(self.dtypes)})")
        for v in op.operands:
            if v is not None and id(v) not in indices and v.type.dtype != dt:
                raise SofieError(f"{op.describe()}: operand %{v.name} is {v.type.dtype}, the kernel runs on {dt}")

    def may_run_in_place(self, op: Operation) -> bool:
        """Whether, with the INPLACE trait, this op may write over its first input."""
        return True

    def couples_events(self, op: Operation, batch: str) -> bool:
        """Whether results of one event depend on other events along the batch symbol
        `batch` (a recurrence or a reduction over it), so that a batch may not run in chunks.
        By default: a kernel with an `axis` whose extent in its first operand holds the batch
        (a softmax, arg-max, cumulative sum or top-k across events)."""
        if "axis" not in self.attrs or not op.operands or op.operands[0] is None:
            return False
        shape = op.operands[0].type.shape
        axis = op.attr("axis")
        return 0 <= axis < len(shape) and batch in dim_factors(shape[axis])[1]


def _kernel(name: str, operands: str, attrs: dict | None = None, doc: str = "", inplace: bool = False,
            dtypes: tuple[str, ...] | None = FLOATS,
            index_operands: dict[str, tuple[str, ...]] | None = None) -> type[OpDef]:
    traits = frozenset({INPLACE}) if inplace else frozenset()
    return register(type(name.split(".")[1].title().replace("_", ""), (Kernel,),
                         {"name": name, "operands": operands, "attrs": attrs or {}, "doc": doc, "traits": traits,
                          "dtypes": dtypes, "index_operands": index_operands or {}}))


Gemm = _kernel("low.gemm", "A B C? Y:out", {"transA": Attr("int", 0), "transB": Attr("int", 0),
                                     "alpha": Attr("float", 1.0), "beta": Attr("float", 1.0),
                                     "bias": Attr("str", "none"), "packed_n": Attr("int", 0), **EPILOGUE},
        "Y = act(alpha op(A) op(B) + beta C) through the BLAS shim; bias: none | row | full. "
        "packed_n > 0: B is a constant packed at compile time (sofie/lowering/gemm_pack.py, "
        "[ceil(N/P), K, P]) for the built-in kernel, N = packed_n")
Conv2d = _kernel("low.conv2d", "X W B? Z? scratch? Y:out", {**CONV_ATTRS, **EPILOGUE, "pads": Attr("ints"),
                                                   "strides": Attr("ints"), "dilations": Attr("ints"),
                                                   "tile_rows": Attr("int", 0)},
        "im2col of `tile_rows` output rows at a time into scratch + GEMM, per image and group; "
        "a direct kernel over stride-phase planes in scratch when each group has one input channel "
        "(depthwise; a row loop without scratch when dilated); Z is a residual added "
        "before act. A 1-D conv (rank-3 operands) runs as a 2-D one of height 1")
Conv2dSmallN = _kernel("low.conv2d_small_n", "X W B? Z? scratch? Y:out",
                       {**EPILOGUE, "pads": Attr("ints"), "strides": Attr("ints"), "dilations": Attr("ints"),
                        "kernel_shape": Attr("ints"), "tile_rows": Attr("int", 0)},
        "group-1 conv whose GEMMs have few columns (small images): W is the weight [M, C*kH*kW] packed "
        "at compile time in k-major panels of 48 rows (sofie/lowering/gemm_pack.py, packed_a_columns) "
        "for sofie_rt/gemm_small_n.hxx, which vectorizes over output channels; a pointwise conv reads "
        "X in place, any other im2col's `tile_rows` output rows at a time into scratch; Z is a residual "
        "added before act. A 1-D conv runs as a 2-D one of height 1",
        dtypes=("f32",))
def direct_scratch_floats(c: int, kh: int, kw: int, sh: int, sw: int, oh: int, ow: int) -> int:
    """sofie::rt::conv2d_direct_scratch_floats: one image's stride-phase planes (rows the output
    reads x s_w phases x the row width with a vector of slack, rounded to 16 floats), or the
    im2col of one output row where the build runs it as conv2d (no AVX-512, or AVX2 past 32 taps)."""
    width = -(-(ow + (kw - 1) // sw + 16) // 16) * 16
    return max(c * ((oh - 1) * sh + kh) * sw * width, c * kh * kw * ow)


def direct_max_pool_scratch_floats(c: int, kh: int, kw: int, sh: int, sw: int, oh: int, ow: int, m: int,
                                   pool_kh: int) -> int:
    """sofie::rt::conv2d_direct_max_pool_scratch_floats: the direct conv's scratch, then a ring of
    pool_kh conv rows of all m output channels."""
    return direct_scratch_floats(c, kh, kw, sh, sw, oh, ow) + m * pool_kh * ow


MAX_POOL_ROWS = 16  # sofie_rt/pool.hxx's kMaxPoolRows: window rows its row kernels take


def pool_window_fits(kernel: list[int], strides: list[int]) -> bool:
    """A 2-D max pool window pool.hxx's row kernels take (conv2d_direct_max_pool calls them): at
    most MAX_POOL_ROWS rows, 2 or 3 columns at column stride 1 or 2."""
    return (len(kernel) == 2 and 1 <= kernel[0] <= MAX_POOL_ROWS and kernel[1] in (2, 3)
            and strides[1] in (1, 2))

Conv2dDirect = _kernel("low.conv2d_direct", "X W B? Z? scratch Y:out",
                       {**EPILOGUE, "pads": Attr("ints"), "strides": Attr("ints")},
        "group-1, dilation-1 conv of few taps (C*kH*kW <= 192: 3-channel stems) over wide output rows, "
        "no im2col: scratch holds the image's stride-phase planes, where each tap of an output row is a "
        "contiguous run the GEMM micro-kernel reads in place (sofie_rt/conv_direct.hxx); AVX2 builds "
        "past 32 taps and builds without AVX2 run conv2d on the same operands. Z is a residual added "
        "before act",
        dtypes=("f32",))


@register
class Conv2dDirectMaxPool(Kernel):
    name = "low.conv2d_direct_max_pool"
    operands = "X W B? scratch Y:out"
    attrs = {**EPILOGUE, "pads": Attr("ints"), "strides": Attr("ints"), "pool_kernel": Attr("ints"),
             "pool_pads": Attr("ints"), "pool_strides": Attr("ints")}
    dtypes = ("f32",)
    doc = ("MaxPool(act(conv2d_direct(X, W) + B)) (passes/low/fuse_conv_pool.py): each conv row is pooled "
           "from a ring of pool_kernel[0] rows in scratch after the stride-phase planes, so the conv's "
           "output never goes through memory; the pool has dilation 1, a window of at most 16 rows and "
           "2 or 3 columns at column stride 1 or 2 (sofie_rt/conv_direct.hxx)")

    def verify(self, op: Operation) -> None:
        super().verify(op)
        kernel, strides = op.attr("pool_kernel"), op.attr("pool_strides")
        if not pool_window_fits(kernel, strides):
            raise SofieError(f"{op.describe()}: pool window {kernel} at strides {strides}: expected at most "
                             f"{MAX_POOL_ROWS} rows, 2 or 3 columns, a column stride of 1 or 2")


Conv2dDepthwiseSmall = _kernel("low.conv2d_depthwise_small", "X W B? Z? scratch Y:out",
                                {**EPILOGUE, "pads": Attr("ints"), "strides": Attr("ints")},
        "depthwise conv (one input channel per group, dilation 1, kW <= 8, s_w 1 or 2) read straight "
        "from X on AVX-512: an output row of up to 16 columns one vector, wider rows in chunks of 16 "
        "columns, several rows per step (sofie_rt/depthwise_small.hxx); scratch holds the phase "
        "planes of conv2d_depthwise, which the builds without AVX-512 run; Z is a residual added "
        "before act. A 1-D conv runs as a 2-D one of height 1")
Conv2dWinograd = _kernel("low.conv2d_winograd", "X U B? Z? scratch Y:out", {**EPILOGUE, "pads": Attr("ints"),
                                                            "output_tile": Attr("int"),
                                                            "tile_block": Attr("int"),
                                                            "small_n": Attr("int", 0)},
        "Winograd F(m x m, r x r) conv (r x r, stride 1, group 1), m = output_tile, n = m + r - 1; "
        "U = G w G^T is [n*n, M, C]; `tile_block` m x m output tiles of the batch at a time through "
        "n*n GEMMs; Z is a residual added before act. small_n = 1: the GEMMs are gemm_small_n's "
        "(tile_block <= 64) and U holds each [M, C] packed for it (gemm_pack.packed_a_columns)",
        dtypes=("f32",))
BatchNormalization = _kernel("low.batch_normalization", "X scale B mean var Y:out", {"epsilon": Attr("float", 1e-5)},
                             inplace=True)
Softmax = _kernel("low.softmax", "X Y:out", {"axis": Attr("int"), "log": Attr("int", 0)},
                  "softmax along axis; log=1: LogSoftmax", inplace=True)
Concat = _kernel("low.concat", "inputs*:out", {"axis": Attr("int")}, "the last operand is the output", dtypes=None)
Copy = _kernel("low.copy", "X Y:out", dtypes=None)
BitCopy = _kernel("low.bit_copy", "X Y:out", {}, "Y's bytes are X's (types of the same width)", dtypes=None)
DimCount = _kernel("low.dim_count", "Y:out", {"dims": Attr("strs")},
                   "Y[0] = the product of `dims` (sizes and dim symbols) at run time, in Y's type "
                   "(a mean's divisor over a run-time length)", dtypes=None)
BindDims = _kernel("low.bind_dims", "source", {"rule": Attr("str"), "shape": Attr("strs"), "dims": Attr("strs"),
                                              "params": Attr("ints", [])},
                   "binds the run-time dims `dims` (the result's shape; a static entry is a size, a name a "
                   "run-time dim) from the data of `source` (axes, a target shape, k) and the input's "
                   "`shape`, checking it, by `rule`: reduce (params keepdims, noop_with_empty_axes), "
                   "reshape (allowzero), squeeze, unsqueeze, top_k (axis). Printed at the top of run(), "
                   "so later kernels read them like the interface's dims", dtypes=None)
ReduceAxes = _kernel("low.reduce_axes", "X axes Y:out", {"body": Attr("str"), "init": Attr("float"),
                                                       "final": Attr("str", ""), "noop": Attr("int", 0)},
                     "Y = final(fold of body over the axes listed in `axes` (read at run time, checked "
                     "by low.bind_dims)); body over acc (x-1) and x0, final over acc and x1 = the count "
                     "reduced; Y is packed at its run-time dims", dtypes=None)
Hardmax = _kernel("low.hardmax", "X Y:out", {"axis": Attr("int")}, "1 at the first largest element along axis")
ArgReduce = _kernel("low.arg_reduce", "X Y:out", {"axis": Attr("int"), "largest": Attr("int"), "last": Attr("int", 0)},
                    "i64 index of the largest (smallest) element along axis; last: the last one of equals",
                    dtypes=None)
Cumulative = _kernel("low.cumulative", "X axis_at? Y:out", {"axis": Attr("int", -1), "product": Attr("int", 0),
                                                         "exclusive": Attr("int", 0), "reverse": Attr("int", 0)},
                     "running sum (product) along `axis`, or along the axis the one-element `axis_at` "
                     "operand holds at run time (checked against the rank)", dtypes=NUMERIC,
                     index_operands={"axis_at": ("i32", "i64")})
TopK = _kernel("low.top_k", "X order values:out indices:out", {"axis": Attr("int"), "largest": Attr("int", 1)},
               "the k = values' axis length largest (smallest) along axis, ordered, ties by index; "
               "order: i64 scratch for the axis' indices", dtypes=None)
LayerNorm = _kernel("low.layer_norm", "X scale B? Y:out mean?:out inv_std?:out",
                    {"axis": Attr("int"), "epsilon": Attr("float"), "centered": Attr("int", 1)},
                    "normalize rows over axes [axis, rank) (centered=0: RMSNorm); scale and B have the "
                    "normalized shape; mean and inv_std, when given, receive the statistics")
GroupNorm = _kernel("low.group_norm", "X scale B Y:out", {"groups": Attr("int"), "epsilon": Attr("float")},
                    "normalize each group of channels of each image; scale and B per channel or per group")
Lrn = _kernel("low.lrn", "X Y:out", {"alpha": Attr("float"), "beta": Attr("float"), "bias": Attr("float"),
                                     "size": Attr("int")}, "local response normalization across channels")
TakeAxes = _kernel("low.take_axes", "X table Y:out", {"tabled": Attr("ints"), "fill": Attr("float", 0.0)},
                   "y[i0, i1, ...] = X[t0[i0], t1[i1], ...], or `fill` where an entry is -1 (Slice, Pad, "
                   "Tile): `table` (i64) holds the tables of the axes marked 1 in `tabled`, one after "
                   "the other; the other axes are copied whole", dtypes=None)
GatherAxis = _kernel("low.gather", "X indices Y:out", {"axis": Attr("int")},
                     "ONNX Gather along `axis` with run-time indices (checked)", dtypes=None)
GatherElements = _kernel("low.gather_elements", "X indices Y:out", {"axis": Attr("int")}, dtypes=None)
GatherND = _kernel("low.gather_nd", "X indices Y:out", {"batch_dims": Attr("int", 0)}, dtypes=None)
ScatterElements = _kernel("low.scatter_elements", "X indices updates Y:out",
                          {"axis": Attr("int"), "reduction": Attr("str", "none")}, dtypes=None)
ScatterND = _kernel("low.scatter_nd", "X indices updates Y:out", {"reduction": Attr("str", "none")}, dtypes=None)
Dft = _kernel("low.dft", "X scratch Y:out", {"axis": Attr("int"), "n": Attr("int"), "inverse": Attr("int", 0)},
              "DFT along `axis` of a real or complex signal (the last axis), output [..., n_out, ..., 2]; "
              "scratch: the n twiddle factors as double pairs")
Det = _kernel("low.det", "X scratch Y:out", {}, "determinants of square matrices by LU in double; scratch: "
              "one matrix of doubles")
ReverseSequence = _kernel("low.reverse_sequence", "X lens Y:out", {"time_major": Attr("int")},
                          "reverses the first lens[b] steps of each batch entry b (lens: run-time i64, checked)",
                          dtypes=None)
Trilu = _kernel("low.trilu", "X k? Y:out", {"upper": Attr("int", 1)}, "zeroes one side of a diagonal of each "
                "matrix (the last two axes); k: the diagonal, a run-time i64", dtypes=None)
Conv3d = _kernel("low.conv3d", "X W B? Z? scratch Y:out", {**EPILOGUE, "group": Attr("int", 1), "pads": Attr("ints"),
                                                       "strides": Attr("ints"), "dilations": Attr("ints"),
                                                       "tile_planes": Attr("int")},
        "im2col of `tile_planes` output depth planes at a time into scratch + GEMM, per image and group")
ConvTranspose = _kernel("low.conv_transpose", "X W B? scratch Y:out",
                        {"group": Attr("int", 1), "pads": Attr("ints"), "strides": Attr("ints"),
                         "dilations": Attr("ints")},
        "1-3 spatial dims; per image and group, W_g^T X_g into scratch (one GEMM), then col2im into Y")
# pooling over 1-3 spatial dims; kernel_shape, strides, dilations per spatial dim, pads begin... end...
POOL_WINDOW = {"kernel_shape": Attr("ints"), "pads": Attr("ints"), "strides": Attr("ints"),
               "dilations": Attr("ints")}


@register
class MaxPool(Kernel):
    name = "low.max_pool"
    operands = "X indices?:out Y:out"
    attrs = {**POOL_WINDOW, "storage_order": Attr("int", 0)}
    dtypes = FLOATS + ("i8", "u8")  # ONNX's types
    doc = ("indices (i64, optional): the flat index of each maximum in X, its spatial dims row-major "
           "(storage_order 0) or column-major (1)")

    def couples_events(self, op: Operation, batch: str) -> bool:
        """Indices count from the first image of the whole batch, not of a chunk."""
        return op.indices is not None and batch in dim_factors(op.X.type.shape[0])[1]

    def verify(self, op: Operation) -> None:
        dt = op.Y.type.dtype
        if dt not in self.dtypes:
            raise SofieError(f"{op.describe()}: no kernel for element type {dt} (supported: {', '.join(self.dtypes)})")
        if op.X.type.dtype != dt or (op.indices is not None and op.indices.type.dtype != "i64"):
            raise SofieError(f"{op.describe()}: X is {op.X.type.dtype}, Y {dt}: expected one type (and i64 indices)")


Pool = _kernel("low.pool", "X Y:out", {**POOL_WINDOW, "kind": Attr("str"), "count_include_pad": Attr("int", 0),
                                      "p": Attr("int", 2)},
        "kind avg (count_include_pad) or lp (p)")
GlobalPool = _kernel("low.global_pool", "X Y:out", {"kind": Attr("str"), "p": Attr("int", 2)},
        "max, avg or lp (p) over all spatial dims")
BatchedGemm = _kernel("low.batched_gemm", "A B Y:out", EPILOGUE,
                      "MatMul with batch dims on both sides: a GEMM per element of Y's batch; A [..., M, K] "
                      "(or [K]) and B [..., K, N] (or [K]) broadcast their batch dims to Y's")
ResizeAxis = _kernel("low.resize_axis", "X index weight? Y:out",
                     {"axis": Attr("int"), "extrapolation_value": Attr("float", 0.0)},
                     "one resized axis of a Resize: output position j along `axis` is sum_t weight[j, t] "
                     "X[index[j, t]] (no weight: nearest, one tap); index -1 takes extrapolation_value",
                     dtypes=None)

GridSample = _kernel("low.grid_sample", "X grid Y:out", {"mode": Attr("str"), "padding_mode": Attr("str"),
                                                        "align_corners": Attr("int", 0)},
                     "ONNX GridSample over 1-3 spatial dims (grid of X's type)")
Col2Im = _kernel("low.col2im", "X Y:out", {"block_shape": Attr("ints"), "pads": Attr("ints"),
                                           "strides": Attr("ints"), "dilations": Attr("ints")},
                 "ONNX Col2Im over 1-3 spatial dims: each column's block added into Y")


@register
class MaxUnpool(Kernel):
    name = "low.max_unpool"
    operands = "X I Y:out"
    attrs = {"unpooled": Attr("ints")}
    doc = ("Y = zeros; Y[i] = X[k] for the position i that I[k] indexes in the unpooled spatial dims "
           "`unpooled` (Y's may be larger: padded at the end); I is i64, checked at run time")

    def couples_events(self, op: Operation, batch: str) -> bool:
        """I counts from the first image of the whole batch, not of a chunk."""
        return batch in dim_factors(op.X.type.shape[0])[1]


RoiAlign = _kernel("low.roi_align", "X rois batch_indices Y:out",
                   {"mode": Attr("str"), "half_pixel": Attr("int"), "sampling_ratio": Attr("int"),
                    "spatial_scale": Attr("float")},
                   "ONNX RoiAlign; batch_indices is i64 (checked at run time), the rest of X's type", dtypes=None)
DeformConv = _kernel("low.deform_conv", "X W offset B? mask? scratch Y:out",
                     {"pads": Attr("ints"), "strides": Attr("ints"), "dilations": Attr("ints"),
                      "group": Attr("int"), "offset_group": Attr("int")},
                     "2-D DeformConv: per image and group, the bilinearly sampled (and masked) columns into "
                     "scratch [C/group * kH * kW, OH * OW], then one GEMM")


class RecurrentKernel(Kernel):
    """A recurrent layer, one runtime call per direction: `xw`, `state` and `r_t` are its
    scratch (the input projection of every step, the step's gates and h / c, R transposed). Every operand has the
    output's type, but sequence_lens, which is i32."""

    dtypes = FLOATS
    index_operands = {"sequence_lens": ("i32",)}

    def couples_events(self, op: Operation, batch: str) -> bool:
        """Layout 0 runs the recurrence along X's axis 0: when that is the batch symbol, the
        steps are not independent events."""
        return not op.layout and batch in dim_factors(op.X.type.shape[0])[1]


def _recurrent_kernel(name: str, operands: str, attrs: dict, doc: str) -> type[OpDef]:
    common = {"direction": Attr("str"), "layout": Attr("int", 0), "clip": Attr("float", 0.0),
              "activations": Attr("strs")}
    return register(type(name.split(".")[1].title(), (RecurrentKernel,),
                         {"name": name, "operands": operands, "attrs": {**common, **attrs}, "doc": doc}))


_RECURRENT_DOC = ("`activations`: scalar bodies over x0, per direction in ONNX order; clip 0: none")
Rnn = _recurrent_kernel("low.rnn", "X W R B? sequence_lens? initial_h? xw state r_t Y:out Y_h:out", {},
                        "ONNX RNN; " + _RECURRENT_DOC)
Gru = _recurrent_kernel("low.gru", "X W R B? sequence_lens? initial_h? xw state r_t Y:out Y_h:out",
                        {"linear_before_reset": Attr("int", 0)}, "ONNX GRU; " + _RECURRENT_DOC)
Lstm = _recurrent_kernel("low.lstm", "X W R B? sequence_lens? initial_h? initial_c? P? xw state r_t Y:out Y_h:out "
                         "Y_c:out", {"input_forget": Attr("int", 0)}, "ONNX LSTM; " + _RECURRENT_DOC)


PARALLEL, REDUCTION = "parallel", "reduction"


@register
class Generic(Kernel):
    """A structured loop nest in the spirit of MLIR's linalg.generic.

    The loops run over `iterators` (parallel or reduction). Operand k (inputs, then the output
    last) is indexed through `maps[k]`: for each of its axes, the loop it follows, or -1 for a
    size-1 axis read at index 0 (broadcasting). `body` is a scalar expression over the inputs'
    elements x0, x1, ... (and `acc`, the output's running value, in a reduction, which starts
    at `init`). Elementwise ops, broadcasts, transposes and reductions all lower to it.
    `final` (reductions only) finishes each result: a body over `acc` and the inputs no
    reduction loop indexes, e.g. `div(acc, 64)` for a mean; "" writes acc as it is.
    `fused` names the source nodes of the loop nests `fuse-loops` merged into this one (for
    reading and pictures; the loops are the body).
    """

    name = "low.generic"
    operands = "inputs*:out"
    attrs = {"maps": Attr("intss"), "iterators": Attr("strs"), "body": Attr("str"), "init": Attr("float", 0.0),
             "final": Attr("str", ""), "fused": Attr("strs", [])}
    traits = frozenset({INPLACE})

    def domain(self, op: Operation) -> list[Dim]:
        """The loop bounds, read off the operands' shapes."""
        bounds: list[Dim | None] = [None] * len(op.iterators)
        for v, m in zip(op.operands, op.maps):
            for axis, loop in enumerate(m):
                if loop >= 0 and bounds[loop] is None:
                    bounds[loop] = v.type.shape[axis]
        if any(b is None for b in bounds):
            raise SofieError(f"{op.describe()}: loop {bounds.index(None)} indexes no operand")
        return bounds

    def couples_events(self, op: Operation, batch: str) -> bool:
        """A reduction loop over a run-time extent that holds the batch (a mean over events)."""
        return any(it == REDUCTION and batch in dim_factors(b)[1]
                   for it, b in zip(op.iterators, self.domain(op)))

    def may_run_in_place(self, op: Operation) -> bool:
        """Writing over operand 0 is safe when each iteration reads the element it writes and
        nothing after: all-parallel, operand 0 indexed like the output. Not a transpose, not a
        reduction (a matmul still reads a row of A after writing the first element it feeds)."""
        return all(it == PARALLEL for it in op.iterators) and op.maps[0] == op.maps[-1]

    def verify(self, op: Operation) -> None:
        iters, maps = op.iterators, op.maps
        if any(i not in (PARALLEL, REDUCTION) for i in iters):
            raise SofieError(f"{op.describe()}: iterators must be '{PARALLEL}' or '{REDUCTION}', got {iters}")
        if len(maps) != len(op.operands):
            raise SofieError(f"{op.describe()}: {len(maps)} maps for {len(op.operands)} operands")
        bounds = self.domain(op)
        for k, (v, m) in enumerate(zip(op.operands, maps)):
            if len(m) != v.type.rank:
                raise SofieError(f"{op.describe()}: map {k} has {len(m)} entries for a rank-{v.type.rank} operand")
            for axis, loop in enumerate(m):
                if not -1 <= loop < len(iters):
                    raise SofieError(f"{op.describe()}: map {k} names loop {loop}; there are {len(iters)}")
                want = 1 if loop < 0 else bounds[loop]
                if v.type.shape[axis] != want:
                    raise SofieError(f"{op.describe()}: operand {k} axis {axis} is {v.type.shape[axis]}, "
                                     f"its loop runs to {want}")
        out = maps[-1]
        parallel = [i for i, it in enumerate(iters) if it == PARALLEL]
        if sorted(x for x in out if x >= 0) != parallel:
            raise SofieError(f"{op.describe()}: the output map {out} must name each parallel loop once "
                             f"and no reduction loop")
        ins = [v.type.dtype for v in op.operands[:-1]]
        y = op.operands[-1].type.dtype
        acc = y if REDUCTION in iters else None
        got = result_type(parse_body(op.body), ins, acc)
        if got is not None and got != y:
            raise SofieError(f"{op.describe()}: the body computes {got}, the output is {y}")
        if op.final:
            self._verify_final(op, ins, acc)

    def _verify_final(self, op: Operation, ins: list[str], acc: str | None) -> None:
        if acc is None:
            raise SofieError(f"{op.describe()}: `final` needs a reduction loop")
        final = parse_body(op.final)
        reduction = {i for i, it in enumerate(op.iterators) if it == REDUCTION}
        for k in variables(final) - {-1}:
            if k < len(ins) and reduction & set(op.maps[k]):
                raise SofieError(f"{op.describe()}: `final` reads x{k}, which a reduction loop indexes")
        got = result_type(final, ins, acc)
        if got is not None and got != acc:
            raise SofieError(f"{op.describe()}: `final` computes {got}, the output is {acc}")
