// The Session every generated model is built on: it owns the shared read-only weights,
// the arena (one aligned allocation, made at construction, never in infer), the maxima of
// the dimension symbols, and the chunking of batches above the batch maximum.
//
// A generated header supplies only what is particular to its model: a `Model` struct of
// constants, and a Session deriving from SessionBase<Model> that adds the typed infer
// signatures and the run body. Model must provide:
//
//   static constexpr WeightsSpec kWeights;            what the .dat file must match
//   static constexpr const char* kDefaultWeightsPath;  "NAME.dat"
//   static constexpr Batching kBatching;               how inputs and outputs carry the batch
//   static constexpr std::size_t kDefaultMaxBatch;     batch maximum when none is given
//   static constexpr std::size_t kDims;                dim symbols other than the batch
//   static constexpr std::array<const char*, kDims> kDimNames;
//   static constexpr std::array<std::size_t, kDims> kDefaultMaxDims;  their default maxima
//   static std::size_t arena_bytes(std::size_t max_batch, const std::array<std::size_t, kDims>&);
//                                                      the memory plan's arena size for maxima
#ifndef SOFIE_RT_SESSION_HXX_V0_1_0
#define SOFIE_RT_SESSION_HXX_V0_1_0

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "blas.hxx"
#include "thread_pool.hxx"
#include "weights.hxx"

#if defined(SOFIE_BLAS_CBLAS) && (defined(__GNUC__) || defined(__clang__)) && !defined(_WIN32)
// Present when the system CBLAS is OpenBLAS (a weak reference: null with any other CBLAS).
extern "C" void openblas_set_num_threads(int) __attribute__((weak));
#endif

namespace sofie {
inline namespace v0_1_0 {
namespace rt {

// How a model's inputs and outputs carry the batch, which decides what infer accepts.
enum class Batching {
    Fixed,    // no symbol at all: every call is exactly one event
    Bounded,  // the batch symbol is not (only) axis 0 of every input and output, so a
              // batch cannot be split into slices: it must not exceed max_batch
    Chunked,  // the batch is axis 0 of every input and output: batches above max_batch
              // run as consecutive slices of max_batch events
};

// The facts a weights file is checked against when it is loaded.
struct WeightsSpec {
    std::uint64_t bytes;        // payload size
    std::uint64_t fingerprint;  // of the model name and every tensor's bytes
    std::uint32_t tensors;
};

using Weights = WeightFile;

inline std::shared_ptr<const Weights> load_weights(const std::string& path,
                                                   const WeightsSpec& spec) {
    return std::make_shared<const Weights>(path, spec.bytes, spec.fingerprint, spec.tensors);
}

// a * b and a + b, refused when they do not fit a size_t: absurd maxima must not wrap around
// to a small arena that kernels would then overrun.
inline std::size_t checked_mul(std::size_t a, std::size_t b) {
    if (a != 0 && b > std::numeric_limits<std::size_t>::max() / a) {
        throw std::length_error("sofie: the maxima given to the Session need an arena larger than memory");
    }
    return a * b;
}

inline std::size_t checked_add(std::size_t a, std::size_t b) {
    if (b > std::numeric_limits<std::size_t>::max() - a) {
        throw std::length_error("sofie: the maxima given to the Session need an arena larger than memory");
    }
    return a + b;
}

// The memory plan's arena: each row holds the byte coefficients of one buffer's end over the
// plan's terms (1, then products of symbol maxima); the arena is the largest row's value.
template <std::size_t R, std::size_t T>
std::size_t arena_size(const std::size_t (&rows)[R][T], const std::array<std::size_t, T>& terms) {
    std::size_t n = 0;
    for (const auto& row : rows) {
        std::size_t end = 0;
        for (std::size_t t = 0; t < T; ++t) end = checked_add(end, checked_mul(row[t], terms[t]));
        n = std::max(n, end);
    }
    return n;
}

// OpenBLAS's own threads off, once per process: parallelism is the Sessions' (one per thread)
// and their intra-op pools'. Left on, every GEMM of every Session would wake OpenBLAS's
// threads, which on a machine whose cores are all busy made a resnet18 Session 60x slower
// (bench: `make bench` measures the scaling of Sessions over threads).
inline void single_threaded_blas() {
    static const bool done = [] {
#if defined(SOFIE_BLAS_OPENBLAS)
        scipy_openblas_set_num_threads(1);
#elif defined(SOFIE_BLAS_CBLAS) && (defined(__GNUC__) || defined(__clang__)) && !defined(_WIN32)
        if (openblas_set_num_threads != nullptr) openblas_set_num_threads(1);
#endif
        return true;
    }();
    (void)done;
}

// Weights of at most this many bytes (a model that stays in a core's L2 from call to call) are
// copied into each Session built from a Weights object that is shared: on an Intel Xeon (2 MB
// L2 per core), two Sessions on two cores reading the same 0.8 MB of weights (mlp_5x200) ran at
// 1.43x the throughput of one, and 1.96x with a copy each. Larger weights stream from L3 or
// memory on every call, where one copy serves all cores. 0: never copy.
#ifndef SOFIE_PRIVATE_WEIGHTS_MAX_BYTES
#define SOFIE_PRIVATE_WEIGHTS_MAX_BYTES (std::size_t{1} << 20)
#endif
inline constexpr std::size_t kPrivateWeightsMaxBytes = SOFIE_PRIVATE_WEIGHTS_MAX_BYTES;

// The weights a Session reads: `weights` itself, or a private copy when it is shared and small
// (kPrivateWeightsMaxBytes). A Session built from a file holds the only reference: no copy.
inline std::shared_ptr<const Weights> session_weights(std::shared_ptr<const Weights> weights) {
    if (weights && weights.use_count() > 1 && weights->payload_bytes() <= kPrivateWeightsMaxBytes) {
        return std::make_shared<const Weights>(*weights, Weights::PrivateCopy{});
    }
    return weights;
}

// One Session per thread; any number of Sessions may share one Weights object, since it is
// never written after loading (small weights are copied per Session: session_weights).
// Movable (the arena moves with it), not copyable.
template <class Model>
class SessionBase {
public:
    // Maxima of the dim symbols other than the batch (sequence length, objects per event...),
    // in the order of Model::kDimNames. The memory plan is valid for every value up to them.
    using Dims = std::array<std::size_t, Model::kDims>;
    // The model's constants (sofie::Functor reads the default weights path from them).
    using model_type = Model;

    // intra_op_threads > 1: the Session also owns a pool of that many threads (itself and
    // intra_op_threads - 1 workers, started here) that its large GEMMs and convs split over
    // (thread_pool.hxx); the results are those of one thread. 1 (the default): no pool.
    explicit SessionBase(const std::string& weights = Model::kDefaultWeightsPath,
                         std::size_t max_batch = Model::kDefaultMaxBatch,
                         const Dims& max_dims = Model::kDefaultMaxDims,
                         std::size_t intra_op_threads = 1)
        : SessionBase(load_weights(weights, Model::kWeights), max_batch, max_dims, intra_op_threads) {}

    explicit SessionBase(std::shared_ptr<const Weights> weights,
                         std::size_t max_batch = Model::kDefaultMaxBatch,
                         const Dims& max_dims = Model::kDefaultMaxDims,
                         std::size_t intra_op_threads = 1)
        : weights_(session_weights(std::move(weights))),
          max_batch_(clamp_batch(max_batch)),
          max_dims_(clamp_dims(max_dims)),
          arena_(Model::arena_bytes(max_batch_, max_dims_)),
          pool_(intra_op_threads > 1 ? std::make_unique<ThreadPool>(intra_op_threads) : nullptr) {
        if (!weights_) throw std::invalid_argument("sofie: Session needs weights");
        single_threaded_blas();
    }

    // Events one run holds: the arena is sized for this many.
    std::size_t max_batch() const { return max_batch_; }
    const Dims& max_dims() const { return max_dims_; }
    const std::shared_ptr<const Weights>& weights() const { return weights_; }
    // Threads one infer runs on: 1, or the intra_op_threads the Session was constructed with.
    std::size_t intra_op_threads() const { return pool_ ? pool_->size() : 1; }

protected:
    // A dim's value for this call, refused above the maximum the arena was sized for.
    void check_dim(std::size_t i, std::size_t value) const {
        if (value > max_dims_[i]) {
            throw std::invalid_argument(std::string("sofie: dim ") + Model::kDimNames[i] + " = " +
                                        std::to_string(value) + " exceeds its maximum " +
                                        std::to_string(max_dims_[i]) +
                                        " (a Session constructor argument)");
        }
    }

    // Calls run(done, b) once per slice of the batch, `done` events already processed and
    // `b` events in this slice, after checking `batch` against what the model accepts.
    // A template so the generated lambda inlines: no std::function, no allocation.
    template <class Run>
    void for_each_chunk(std::size_t batch, Run&& run) {
        IntraOpScope scope(pool_.get());  // the kernels of this run may split over the pool
        if constexpr (Model::kBatching == Batching::Fixed) {
            if (batch != 1) {
                throw std::invalid_argument("sofie: this model has a fixed shape; batch must be 1");
            }
            run(std::size_t{0}, std::size_t{1});
        } else if constexpr (Model::kBatching == Batching::Bounded) {
            if (batch > max_batch()) throw std::invalid_argument("sofie: batch exceeds max_batch");
            run(std::size_t{0}, batch);
        } else {
            for (std::size_t done = 0; done < batch;) {
                const std::size_t b = std::min(batch - done, max_batch());
                run(done, b);
                done += b;
            }
        }
    }

    // The tensor at a payload offset of the weights file (offsets come from the compiler).
    template <class T>
    const T* weight(std::size_t byte_offset) const {
        return weights_->template data<T>(byte_offset);
    }

    std::byte* arena_data() { return arena_.data(); }

private:
    // A fixed-shape model's arena holds exactly one event; 0 would leave no room for any.
    static std::size_t clamp_batch(std::size_t max_batch) {
        return Model::kBatching == Batching::Fixed ? 1 : std::max<std::size_t>(max_batch, 1);
    }

    static Dims clamp_dims(Dims dims) {
        for (auto& d : dims) d = std::max<std::size_t>(d, 1);
        return dims;
    }

    std::shared_ptr<const Weights> weights_;
    std::size_t max_batch_;
    Dims max_dims_;
    AlignedBuffer arena_;
    std::unique_ptr<ThreadPool> pool_;  // null with one intra-op thread
};

}  // namespace rt
}  // namespace v0_1_0
}  // namespace sofie

#endif  // SOFIE_RT_SESSION_HXX_V0_1_0
