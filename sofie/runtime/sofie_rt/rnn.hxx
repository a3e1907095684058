// Recurrent layers: ONNX RNN, GRU and LSTM, one direction per call (a bidirectional
// layer is two calls), templated on the element type (float, double).
//
// Per call: the input projection X W^T of every step is ONE GEMM into scratch `xw`
// ([T*N, G*H], rows in X's order, with the biases added); R is transposed once into scratch
// `r_t` ([H, G*H]: the BLAS then packs nothing per step, 2.7x faster at a batch of 8); then each
// step is one small GEMM h R^T (two for a GRU without linear_before_reset) and a pass over the
// gates that the compiler vectorizes (the activations are functors spelled from scalar
// bodies, through vmath). Scratch comes from the caller (sized by the lowering rule, see
// sofie/lowering/recurrent.py): xw [T*N*G*H], state [N*(G*H + 2*H)] = the step's gates, then
// h, then c (LSTM) or r * h (GRU), and r_t [H*G*H]. Nothing is allocated.
//
// Gate orders are ONNX's: GRU z, r, h; LSTM i, o, f, c; peepholes P i, o, f. With
// sequence_lens, sequence n runs over its first len[n] steps (a reverse direction from
// len[n] - 1 down), Y is zero past them, and Y_h / Y_c hold the state after its last step.
#ifndef SOFIE_RT_RNN_HXX_V0_1_0
#define SOFIE_RT_RNN_HXX_V0_1_0

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "blas.hxx"
#include "kernels.hxx"

// The gate loops are kept out of line (inlined into a step's loop over the batch, g++ no
// longer vectorizes them) and flattened (else the activation functors may stay calls, in a
// -fPIC build: measured, the LSTM's gates 3x slower).
#if defined(__GNUC__) || defined(__clang__)
#define SOFIE_RNN_CELL __attribute__((noinline, flatten)) inline
#else
#define SOFIE_RNN_CELL inline
#endif

namespace sofie {
inline namespace v0_1_0 {
namespace rt {

// Sizes of a recurrent layer and which of its directions a call computes.
struct RecurrentShape {
    std::size_t seq, batch, input, hidden;  // T, N, I, H
    std::size_t directions, dir;            // D, and this direction's slot in W, R, B, P, Y, Y_h
    bool reverse;                           // runs each sequence from its last step
    bool batch_major;                       // layout 1: X [N, T, I], Y [N, T, D, H], Y_h [N, D, H]
};

namespace detail {

// Row of X (and of xw) holding step t of sequence n.
inline std::size_t step_row(const RecurrentShape& s, std::size_t t, std::size_t n) {
    return s.batch_major ? n * s.seq + t : t * s.batch + n;
}

// Offset of sequence n's state of this direction in initial_h, initial_c, Y_h, Y_c.
inline std::size_t state_offset(const RecurrentShape& s, std::size_t n) {
    return (s.batch_major ? n * s.directions + s.dir : s.dir * s.batch + n) * s.hidden;
}

inline std::size_t y_offset(const RecurrentShape& s, std::size_t t, std::size_t n) {
    return (s.batch_major ? (n * s.seq + t) * s.directions + s.dir
                          : (t * s.directions + s.dir) * s.batch + n) *
           s.hidden;
}

inline std::size_t sequence_length(const RecurrentShape& s, const std::int32_t* lens, std::size_t n) {
    if (lens == nullptr) return s.seq;
    return std::min(static_cast<std::size_t>(std::max<std::int32_t>(lens[n], 0)), s.seq);
}

// Pre-activations are clipped to [-clip, clip]; clip is +inf when the layer has none.
template <class T>
inline T clip_to(T v, T clip) {
    return std::min(std::max(v, -clip), clip);
}

// xw = X W_d^T + Wb + Rb for every step at once. Rb is left out from column `rb_end` on
// (a GRU with linear_before_reset adds it to the h gate inside r * (...)).
template <class T>
inline void recurrent_projection(const RecurrentShape& s, std::size_t gh, const T* x, const T* w,
                                 const T* b, std::size_t rb_end, T* xw) {
    const std::size_t rows = s.seq * s.batch;
    rt::gemm<T>(false, true, rows, gh, s.input, T(1), x, s.input, w + s.dir * gh * s.input, s.input, T(0),
            xw, gh);
    if (b == nullptr) return;
    const T* wb = b + s.dir * 2 * gh;
    const T* rb = wb + gh;
    for (std::size_t i = 0; i < rows; ++i) {
        T* SOFIE_RESTRICT row = xw + i * gh;
        for (std::size_t j = 0; j < rb_end; ++j) row[j] += wb[j] + rb[j];
        for (std::size_t j = rb_end; j < gh; ++j) row[j] += wb[j];
    }
}

// r_t [H, G*H] = R_d^T, so that each step's GEMM reads its weights as stored.
template <class T>
inline void recurrent_transpose(const RecurrentShape& s, std::size_t gh, const T* r, T* SOFIE_RESTRICT r_t) {
    const T* rd = r + s.dir * gh * s.hidden;
    for (std::size_t j = 0; j < gh; ++j)
        for (std::size_t k = 0; k < s.hidden; ++k) r_t[k * gh + j] = rd[j * s.hidden + k];
}

// state [N, H] = this direction's slice of `init`, or zeros.
template <class T>
inline void recurrent_init(const RecurrentShape& s, const T* init, T* state) {
    for (std::size_t n = 0; n < s.batch; ++n) {
        T* row = state + n * s.hidden;
        if (init != nullptr) {
            std::copy_n(init + state_offset(s, n), s.hidden, row);
        } else {
            std::fill(row, row + s.hidden, T(0));
        }
    }
}

template <class T>
inline void recurrent_store(const RecurrentShape& s, const T* state, T* out) {
    for (std::size_t n = 0; n < s.batch; ++n)
        std::copy_n(state + n * s.hidden, s.hidden, out + state_offset(s, n));
}

// Zeros into Y at the steps past each sequence's length.
template <class T>
inline void recurrent_pad(const RecurrentShape& s, const std::int32_t* lens, T* y) {
    if (lens == nullptr) return;
    for (std::size_t n = 0; n < s.batch; ++n) {
        for (std::size_t t = sequence_length(s, lens, n); t < s.seq; ++t) {
            T* row = y + y_offset(s, t, n);
            std::fill(row, row + s.hidden, T(0));
        }
    }
}

// Runs `row(n, t)` for each sequence n still running at step `step`, t its time index.
template <class Row>
inline void active_rows(const RecurrentShape& s, const std::int32_t* lens, std::size_t step, Row row) {
    for (std::size_t n = 0; n < s.batch; ++n) {
        const std::size_t len = sequence_length(s, lens, n);
        if (step < len) row(n, s.reverse ? len - 1 - step : step);
    }
}

// One RNN row: h = f(xr + gr).
template <class T, class F>
SOFIE_RNN_CELL void rnn_cell(std::size_t H, const T* SOFIE_RESTRICT xr, const T* SOFIE_RESTRICT gr,
                             T* SOFIE_RESTRICT h, T clip, F f) {
    for (std::size_t j = 0; j < H; ++j) h[j] = f(clip_to(xr[j] + gr[j], clip));
}

// GRU, before the h gate's GEMM (without linear_before_reset): rh = r * h.
template <class T, class F>
SOFIE_RNN_CELL void gru_reset(std::size_t H, const T* SOFIE_RESTRICT xr, const T* SOFIE_RESTRICT gr,
                              const T* SOFIE_RESTRICT h, T* SOFIE_RESTRICT rh, T clip, F f) {
    for (std::size_t j = 0; j < H; ++j) rh[j] = f(clip_to(xr[j] + gr[j], clip)) * h[j];
}

// One GRU row: xr, gr are the input and recurrent parts of the gates (z, r, h); with
// linear_before_reset (rbh: Rb of the h gate, or nullptr) the h gate's recurrent part is
// multiplied by r, else gr already holds (r * h) Rh^T.
template <bool kLinearBeforeReset, class T, class F, class G>
SOFIE_RNN_CELL void gru_cell(std::size_t H, const T* SOFIE_RESTRICT xr, const T* SOFIE_RESTRICT gr,
                             const T* SOFIE_RESTRICT rbh, T* SOFIE_RESTRICT h, T clip, F f, G g) {
    for (std::size_t j = 0; j < H; ++j) {
        const T z = f(clip_to(xr[j] + gr[j], clip));
        T pre;
        if constexpr (kLinearBeforeReset) {
            const T r = f(clip_to(xr[H + j] + gr[H + j], clip));
            pre = xr[2 * H + j] + r * (gr[2 * H + j] + (rbh != nullptr ? rbh[j] : T(0)));
        } else {
            pre = xr[2 * H + j] + gr[2 * H + j];
        }
        h[j] = (T(1) - z) * g(clip_to(pre, clip)) + z * h[j];
    }
}

// One LSTM row: xr, gr are the input and recurrent parts of the gates (i, o, f, c), p the
// peepholes (i, o, f) when kPeep; updates h and c in place.
template <bool kPeep, bool kCoupled, class T, class F, class G, class Hf>
SOFIE_RNN_CELL void lstm_cell(std::size_t H, const T* SOFIE_RESTRICT xr, const T* SOFIE_RESTRICT gr,
                      const T* SOFIE_RESTRICT p, T* SOFIE_RESTRICT h, T* SOFIE_RESTRICT c, T clip, F f,
                      G g, Hf hf) {
    for (std::size_t j = 0; j < H; ++j) {
        const T cp = c[j];
        const T i = f(clip_to(xr[j] + gr[j] + (kPeep ? p[j] * cp : T(0)), clip));
        T fg;
        if constexpr (kCoupled) {
            fg = T(1) - i;
        } else {
            fg = f(clip_to(xr[2 * H + j] + gr[2 * H + j] + (kPeep ? p[2 * H + j] * cp : T(0)), clip));
        }
        const T cnew = fg * cp + i * g(clip_to(xr[3 * H + j] + gr[3 * H + j], clip));
        const T o = f(clip_to(xr[H + j] + gr[H + j] + (kPeep ? p[H + j] * cnew : T(0)), clip));
        c[j] = cnew;
        h[j] = o * hf(cnew);
    }
}

}  // namespace detail

// ONNX RNN: h = f(x W^T + h R^T + Wb + Rb).
template <class T, class F>
inline void rnn(const T* x, const detail::same<T>* w, const detail::same<T>* r,
                const detail::same<T>* b, const std::int32_t* lens, const detail::same<T>* h0,
                detail::same<T>* xw, detail::same<T>* state, detail::same<T>* r_t, detail::same<T>* y,
                detail::same<T>* y_h, const RecurrentShape& s, detail::same<T> clip, F f) {
    const std::size_t H = s.hidden, N = s.batch;
    T* gates = state;
    T* h = state + N * H;
    detail::recurrent_transpose(s, H, r, r_t);
    detail::recurrent_projection(s, H, x, w, b, H, xw);
    detail::recurrent_init(s, h0, h);
    detail::recurrent_pad(s, lens, y);
    for (std::size_t step = 0; step < s.seq; ++step) {
        rt::gemm<T>(false, false, N, H, H, T(1), h, H, r_t, H, T(0), gates, H);
        detail::active_rows(s, lens, step, [&](std::size_t n, std::size_t t) {
            T* hn = h + n * H;
            detail::rnn_cell(H, xw + detail::step_row(s, t, n) * H, gates + n * H, hn, clip, f);
            std::copy_n(hn, H, y + detail::y_offset(s, t, n));
        });
    }
    detail::recurrent_store(s, h, y_h);
}

// ONNX GRU: z = f(.), r = f(.), h~ = g(x Wh^T + (r * h) Rh^T + Rbh + Wbh) or, with
// linear_before_reset, g(x Wh^T + r * (h Rh^T + Rbh) + Wbh); h = (1 - z) h~ + z h.
template <class T, class F, class G>
inline void gru(const T* x, const detail::same<T>* w, const detail::same<T>* r,
                const detail::same<T>* b, const std::int32_t* lens, const detail::same<T>* h0,
                detail::same<T>* xw, detail::same<T>* state, detail::same<T>* r_t, detail::same<T>* y,
                detail::same<T>* y_h, const RecurrentShape& s, detail::same<T> clip, bool linear_before_reset,
                F f, G g) {
    const std::size_t H = s.hidden, N = s.batch, GH = 3 * H;
    T* gates = state;
    T* h = state + N * GH;
    T* rh = h + N * H;  // r * h, the left operand of the h gate's GEMM
    detail::recurrent_transpose(s, GH, r, r_t);
    const T* rbh = b != nullptr && linear_before_reset ? b + s.dir * 2 * GH + GH + 2 * H : nullptr;
    detail::recurrent_projection(s, GH, x, w, b, linear_before_reset ? 2 * H : GH, xw);
    detail::recurrent_init(s, h0, h);
    detail::recurrent_pad(s, lens, y);
    for (std::size_t step = 0; step < s.seq; ++step) {
        if (linear_before_reset) {
            rt::gemm<T>(false, false, N, GH, H, T(1), h, H, r_t, GH, T(0), gates, GH);
        } else {
            // z and r first; the h gate's GEMM needs r
            rt::gemm<T>(false, false, N, 2 * H, H, T(1), h, H, r_t, GH, T(0), gates, GH);
            std::fill(rh, rh + N * H, T(0));
            detail::active_rows(s, lens, step, [&](std::size_t n, std::size_t t) {
                detail::gru_reset(H, xw + detail::step_row(s, t, n) * GH + H, gates + n * GH + H, h + n * H,
                                  rh + n * H, clip, f);
            });
            rt::gemm<T>(false, false, N, H, H, T(1), rh, H, r_t + 2 * H, GH, T(0), gates + 2 * H, GH);
        }
        detail::active_rows(s, lens, step, [&](std::size_t n, std::size_t t) {
            const T* xr = xw + detail::step_row(s, t, n) * GH;
            T* hn = h + n * H;
            if (linear_before_reset) {
                detail::gru_cell<true>(H, xr, gates + n * GH, rbh, hn, clip, f, g);
            } else {
                detail::gru_cell<false>(H, xr, gates + n * GH, rbh, hn, clip, f, g);
            }
            std::copy_n(hn, H, y + detail::y_offset(s, t, n));
        });
    }
    detail::recurrent_store(s, h, y_h);
}

// ONNX LSTM: i, o, f gates (with peepholes P when given; f = 1 - i with input_forget),
// c = f * c + i * g(.), h = o * h(c).
template <class T, class F, class G, class Hf>
inline void lstm(const T* x, const detail::same<T>* w, const detail::same<T>* r,
                 const detail::same<T>* b, const std::int32_t* lens, const detail::same<T>* h0,
                 const detail::same<T>* c0, const detail::same<T>* p, detail::same<T>* xw,
                 detail::same<T>* state, detail::same<T>* r_t, detail::same<T>* y, detail::same<T>* y_h,
                 detail::same<T>* y_c,
                 const RecurrentShape& s, detail::same<T> clip, bool input_forget, F f, G g, Hf hf) {
    const std::size_t H = s.hidden, N = s.batch, GH = 4 * H;
    T* gates = state;
    T* h = state + N * GH;
    T* c = h + N * H;
    detail::recurrent_transpose(s, GH, r, r_t);
    const T* pd = p != nullptr ? p + s.dir * 3 * H : nullptr;
    detail::recurrent_projection(s, GH, x, w, b, GH, xw);
    detail::recurrent_init(s, h0, h);
    detail::recurrent_init(s, c0, c);
    detail::recurrent_pad(s, lens, y);
    for (std::size_t step = 0; step < s.seq; ++step) {
        rt::gemm<T>(false, false, N, GH, H, T(1), h, H, r_t, GH, T(0), gates, GH);
        detail::active_rows(s, lens, step, [&](std::size_t n, std::size_t t) {
            const T* xr = xw + detail::step_row(s, t, n) * GH;
            const T* gr = gates + n * GH;
            T* hn = h + n * H;
            T* cn = c + n * H;
            // one loop per (peepholes, input_forget), so neither is a branch in the loop
            if (pd != nullptr && input_forget) {
                detail::lstm_cell<true, true>(H, xr, gr, pd, hn, cn, clip, f, g, hf);
            } else if (pd != nullptr) {
                detail::lstm_cell<true, false>(H, xr, gr, pd, hn, cn, clip, f, g, hf);
            } else if (input_forget) {
                detail::lstm_cell<false, true>(H, xr, gr, pd, hn, cn, clip, f, g, hf);
            } else {
                detail::lstm_cell<false, false>(H, xr, gr, pd, hn, cn, clip, f, g, hf);
            }
            std::copy_n(hn, H, y + detail::y_offset(s, t, n));
        });
    }
    detail::recurrent_store(s, h, y_h);
    detail::recurrent_store(s, c, y_c);
}

}  // namespace rt
}  // namespace v0_1_0
}  // namespace sofie

#undef SOFIE_RNN_CELL

#endif  // SOFIE_RT_RNN_HXX_V0_1_0
