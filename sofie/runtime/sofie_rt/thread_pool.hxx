// Intra-op threads: the pool a Session owns when it is constructed with intra_op_threads > 1,
// and the splits kernels make with it.
//
// The pool's threads are created with the Session and live as long as it does; running work
// on them allocates nothing and creates no thread. While a Session runs, its pool is this
// thread's "intra-op pool" (IntraOpScope, set by SessionBase around each run); kernels that
// can split their work ask for it with intra_op_pool() and cut their work at the kernel-call
// level (a GEMM into column or row blocks, an im2col conv into bands of output rows), each part
// a call of the same single-thread kernel on its own block. A part never splits again: inside
// ThreadPool::run no thread sees a pool.
//
// Every element of a result is computed by the same arithmetic, in the same order, whatever
// the split (a GEMM's column or row block does not change how each element is summed): the
// outputs are bitwise those of one thread as long as the BLAS computes each element of C
// independently of the block's size, which the built-in kernels and OpenBLAS do on the tested
// models (tests/e2e/test_intra_op_threads.py).
#ifndef SOFIE_RT_THREAD_POOL_HXX_V0_1_0
#define SOFIE_RT_THREAD_POOL_HXX_V0_1_0

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64)
#include <immintrin.h>
#define SOFIE_RT_PAUSE() _mm_pause()
#else
#define SOFIE_RT_PAUSE() ((void)0)
#endif

namespace sofie {
inline namespace v0_1_0 {
namespace rt {

class ThreadPool;

namespace detail {
// The pool of the Session running on this thread, or nullptr (no pool, or inside a part).
inline thread_local ThreadPool* t_intra_op_pool = nullptr;
}  // namespace detail

inline ThreadPool* intra_op_pool() { return detail::t_intra_op_pool; }

// Makes `pool` this thread's intra-op pool until the end of the scope.
class IntraOpScope {
public:
    explicit IntraOpScope(ThreadPool* pool) : saved_(detail::t_intra_op_pool) { detail::t_intra_op_pool = pool; }
    ~IntraOpScope() { detail::t_intra_op_pool = saved_; }
    IntraOpScope(const IntraOpScope&) = delete;
    IntraOpScope& operator=(const IntraOpScope&) = delete;

private:
    ThreadPool* saved_;
};

// `threads` threads in all: the caller of run() (thread 0) and threads - 1 workers (1, 2,
// ...). A job is `parts` calls part(i, thread); each thread claims the next unclaimed part
// until none is left, so a worker that the OS has not scheduled yet (a loaded machine) costs
// nothing: the caller takes its parts. `thread` lets a part use its thread's slice of a
// scratch buffer. The claim word holds the job's generation, its part count and the next part, so a
// worker waking late for a finished job can claim nothing of it or of a later one.
class ThreadPool {
public:
    explicit ThreadPool(std::size_t threads) : threads_(std::max<std::size_t>(threads, 1)) {
        workers_.reserve(threads_ - 1);
        for (std::size_t w = 1; w < threads_; ++w) workers_.emplace_back([this, w] { work(w); });
    }

    ~ThreadPool() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stop_.store(true, std::memory_order_release);
        }
        wake_.notify_all();
        for (auto& t : workers_) t.join();
    }

    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    std::size_t size() const { return threads_; }

    // Calls part(i, thread) for i in [0, parts) (parts < 65536), spread over the threads;
    // returns when all are done. One caller at a time (the Session's own thread).
    template <class Part>
    void run(std::size_t parts, const Part& part) {
        IntraOpScope no_nesting(nullptr);
        if (threads_ == 1 || parts <= 1) {
            for (std::size_t i = 0; i < parts; ++i) part(i, std::size_t{0});
            return;
        }
        fn_ = [](const void* ctx, std::size_t i, std::size_t t) { (*static_cast<const Part*>(ctx))(i, t); };
        ctx_ = &part;
        done_.store(0, std::memory_order_relaxed);
        const std::uint64_t generation = (claim_.load(std::memory_order_relaxed) >> 32) + 1;
        {
            // the lock orders the new job against a worker about to sleep (wait_for_job)
            std::lock_guard<std::mutex> lock(mutex_);
            claim_.store(generation << 32 | std::uint64_t(parts) << 16, std::memory_order_release);
        }
        wake_.notify_all();
        run_parts(generation, 0);
        for (unsigned spin = 0; done_.load(std::memory_order_acquire) != parts; ++spin) {
            if (spin < kSpins) {
                SOFIE_RT_PAUSE();
            } else {
                std::this_thread::yield();  // a worker in the middle of a part was descheduled
            }
        }
    }

private:
    // Spins (a few microseconds) before sleeping or yielding. Short: a worker still asleep
    // when a job starts costs only its share of the parts (the caller claims them), while
    // spinning costs a core; on a host whose cores were all busy, 2^12 spins made a
    // resnet18 call with 2 intra-op threads take 35% more CPU time than with 1, 2^8 15%.
    static constexpr unsigned kSpins = 1u << 8;

    // Claims and runs parts of job `generation` until none is left.
    void run_parts(std::uint64_t generation, std::size_t thread) {
        std::uint64_t c = claim_.load(std::memory_order_acquire);
        for (;;) {
            const std::uint64_t parts = (c >> 16) & 0xFFFF, next = c & 0xFFFF;
            if ((c >> 32) != generation || next >= parts) return;
            if (claim_.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
                fn_(ctx_, std::size_t(next), thread);
                done_.fetch_add(1, std::memory_order_release);
                c = claim_.load(std::memory_order_acquire);
            }
        }
    }

    void work(std::size_t thread) {
        std::uint64_t seen = 0;
        while (wait_for_job(seen)) run_parts(seen, thread);
    }

    // Waits for a generation other than `seen` (true, `seen` updated) or stop (false);
    // spins first, then sleeps.
    bool wait_for_job(std::uint64_t& seen) {
        const auto fresh = [&] { return (claim_.load(std::memory_order_acquire) >> 32) != seen; };
        for (unsigned spin = 0; spin < kSpins && !fresh(); ++spin) {
            if (stop_.load(std::memory_order_acquire)) return false;
            SOFIE_RT_PAUSE();
        }
        if (!fresh()) {
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, [&] { return fresh() || stop_.load(std::memory_order_acquire); });
        }
        if (stop_.load(std::memory_order_acquire)) return false;
        seen = claim_.load(std::memory_order_acquire) >> 32;
        return true;
    }

    const std::size_t threads_;
    // the job: written by run() before the claim word is published, read after a claim
    void (*fn_)(const void*, std::size_t, std::size_t) = nullptr;
    const void* ctx_ = nullptr;
    // each on its own cache line: every thread writes claim_ and done_ while the caller polls
    alignas(64) std::atomic<std::uint64_t> claim_{0};  // generation << 32 | parts << 16 | next
    alignas(64) std::atomic<std::size_t> done_{0};
    alignas(64) std::atomic<bool> stop_{false};
    std::mutex mutex_;
    std::condition_variable wake_;
    std::vector<std::thread> workers_;
};

namespace detail {

// A product smaller than this many multiply-adds runs on one thread: the split would cost
// more (waking the workers and waiting for them, a few microseconds) than it saves.
inline constexpr std::size_t kMinSplitMacs = std::size_t{1} << 20;

// [part * n / parts, (part + 1) * n / parts) rounded to multiples of `unit` (the last part
// takes the remainder).
inline void split_range(std::size_t n, std::size_t parts, std::size_t part, std::size_t unit,
                        std::size_t& lo, std::size_t& hi) {
    const std::size_t units = (n + unit - 1) / unit;
    lo = std::min(n, units * part / parts * unit);
    hi = part + 1 == parts ? n : std::min(n, units * (part + 1) / parts * unit);
}

// Splits C[M, N] = op(A) op(B) over the current intra-op pool: column blocks (multiples of
// 16 columns, at least 64) when N is wide, else row blocks (multiples of 8 rows, at least 16:
// never a single row, which the BLAS shim takes down another path); one block per thread,
// since each block packs the other operand again (two per thread cost conv14 15% more CPU
// time than one). block(i0, i1, j0, j1) computes rows [i0, i1) and columns [j0, j1). False when there is no pool or the product
// is too small or narrow to split; the caller then runs it whole.
template <class Block>
bool split_gemm(std::size_t M, std::size_t N, std::size_t K, const Block& block) {
    ThreadPool* pool = intra_op_pool();
    if (pool == nullptr || M < 2) return false;
    const std::size_t T = pool->size();
    if (M * N * K < kMinSplitMacs) return false;
    if (N >= T * 64) {
        pool->run(T, [&](std::size_t p, std::size_t) {
            std::size_t j0, j1;
            split_range(N, T, p, 16, j0, j1);
            if (j0 < j1) block(std::size_t{0}, M, j0, j1);
        });
        return true;
    }
    if (M >= T * 16) {
        pool->run(T, [&](std::size_t p, std::size_t) {
            std::size_t i0, i1;
            split_range(M, T, p, 8, i0, i1);
            if (i0 < i1) block(i0, i1, std::size_t{0}, N);
        });
        return true;
    }
    return false;
}

}  // namespace detail

}  // namespace rt
}  // namespace v0_1_0
}  // namespace sofie

#endif  // SOFIE_RT_THREAD_POOL_HXX_V0_1_0
