// sofie::Functor<N, Session, T>: a generated model as a callable for ROOT's
// RDataFrame::DefineSlot, with the semantics of ROOT's SofieFunctor:
//
//   #include "NAME.hxx"   // (includes this header)
//   sofie::Functor<3, TMVA_SOFIE_NAME::Session> f(df.GetNSlots(), "NAME.dat");
//   auto scored = df.DefineSlot("score", f, {"a", "b", "c"});  // score: std::vector<float>
//
// One Session per slot, all sharing one read-only copy of the weights, which are read once
// (weights small enough to stay in a core's L2 are copied per slot: session.hxx).
// RDataFrame copies the functor: copies share the Sessions. The call operator is a plain
// (unsigned slot, T x0, ..., T x{N-1}) function, not a variadic template, because a typed
// DefineSlot reads the column types off &F::operator(). The model must have the
// SOFIE-compatible form: one input of N values per event, one output, no other dims.
//
// Not in `sofie::rt` but in `sofie` itself (the versioned inline namespace still keeps two
// sofie versions apart), since this is the name user code spells.
#ifndef SOFIE_RT_FUNCTOR_HXX_V0_1_0
#define SOFIE_RT_FUNCTOR_HXX_V0_1_0

#include <cstddef>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace sofie {
inline namespace v0_1_0 {
namespace rt {

inline bool readable_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return f.good();
}

// The weights file as given when it exists, else the file of that name beside `header` (a
// __FILE__): on a distributed worker, the files shipped with the header land beside it.
inline std::string find_weights(const std::string& path, const std::string& header) {
    if (readable_file(path)) return path;
    const std::size_t slash = header.find_last_of('/');
    if (slash == std::string::npos) return path;
    const std::size_t base = path.find_last_of('/');
    const std::string beside = header.substr(0, slash + 1) + (base == std::string::npos ? path : path.substr(base + 1));
    return readable_file(beside) ? beside : path;  // else the Session reports the path as given
}

// One Session per slot; the first loads the weights (from `path` exactly), the others share
// them (or copy them: session_weights).
// intra_op_threads > 1 gives each slot's Session its own pool of that many threads.
template <class Session>
class SlotSessions {
public:
    SlotSessions(unsigned nslots, const std::string& path, std::size_t intra_op_threads = 1) {
        using Model = typename Session::model_type;
        const unsigned n = nslots == 0 ? 1u : nslots;
        sessions_.reserve(n);
        sessions_.emplace_back(path, Model::kDefaultMaxBatch, Model::kDefaultMaxDims, intra_op_threads);
        for (unsigned i = 1; i < n; ++i) {
            sessions_.emplace_back(sessions_.front().weights(), Model::kDefaultMaxBatch, Model::kDefaultMaxDims,
                                   intra_op_threads);
        }
    }

    Session& operator[](unsigned slot) {
        if (slot >= sessions_.size()) {
            throw std::out_of_range("sofie::Functor: slot " + std::to_string(slot) + " of a functor made for " +
                                    std::to_string(sessions_.size()) + " slot(s)");
        }
        return sessions_[slot];
    }

    std::size_t size() const { return sessions_.size(); }

private:
    std::vector<Session> sessions_;
};

template <std::size_t, class T>
using Repeat = T;

template <class Session, class T, class Indices>
class FunctorBase;

// The index_sequence spells out N parameters of type T.
template <class Session, class T, std::size_t... I>
class FunctorBase<Session, T, std::index_sequence<I...>> {
public:
    // `weights`: the file as given, else the file of that name beside the model's header;
    // empty: the model's default ("NAME.dat"). intra_op_threads: see SessionBase (1: none;
    // RDataFrame's slots usually take every core already).
    FunctorBase(unsigned nslots, const std::string& weights, std::size_t intra_op_threads)
        : sessions_(std::make_shared<SlotSessions<Session>>(
              nslots, find_weights(weights.empty() ? Model::kDefaultWeightsPath : weights, Model::kHeaderFile),
              intra_op_threads)) {}

    // The model's output for one event (SofieFunctor's return type: it allocates).
    std::vector<T> operator()(unsigned slot, Repeat<I, T>... x) const {
        const T in[] = {x...};
        return (*sessions_)[slot].infer(in);
    }

    // The Session of a slot, for callers that manage their own buffers.
    Session& session(unsigned slot) const { return (*sessions_)[slot]; }
    std::size_t slots() const { return sessions_->size(); }

private:
    using Model = typename Session::model_type;
    std::shared_ptr<SlotSessions<Session>> sessions_;  // shared by copies
};

}  // namespace rt

template <std::size_t N, class Session, class T = float>
class Functor : public rt::FunctorBase<Session, T, std::make_index_sequence<N>> {
    static_assert(N > 0, "sofie::Functor needs at least one input value");

public:
    explicit Functor(unsigned nslots = 1, const std::string& weights = "", std::size_t intra_op_threads = 1)
        : rt::FunctorBase<Session, T, std::make_index_sequence<N>>(nslots, weights, intra_op_threads) {}
};

}  // namespace v0_1_0
}  // namespace sofie

#endif  // SOFIE_RT_FUNCTOR_HXX_V0_1_0
