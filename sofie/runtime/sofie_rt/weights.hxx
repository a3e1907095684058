// Weights file (.dat) format, checksum and loader.
//
// Layout (little-endian):
//   [0, 64)   header: "SOFIEDAT" | u32 version | u32 n_tensors | u64 payload_bytes
//                     | u64 checksum(payload) | u64 fingerprint | zero padding
//   [64, ...) payload: tensors at 64-byte aligned offsets. The offsets are
//             compiled into the generated model header, so the file carries
//             no table of contents; the fingerprint ties the two together.
//
// The checksum must stay bit-identical to sofie/runtime/checksum.py.
#ifndef SOFIE_RT_WEIGHTS_HXX_V0_1_0
#define SOFIE_RT_WEIGHTS_HXX_V0_1_0

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>
#if __has_include(<unistd.h>)
#include <unistd.h>  // getcwd (much lighter to parse than <filesystem>)
#define SOFIE_RT_HAS_GETCWD 1
#endif

// Large buffers on transparent huge pages (AlignedBuffer); -DSOFIE_HUGE_PAGES=0 turns it off.
#ifndef SOFIE_HUGE_PAGES
#define SOFIE_HUGE_PAGES 1
#endif
#if SOFIE_HUGE_PAGES && defined(__linux__)
#include <sys/mman.h>  // madvise
#endif

namespace sofie {
inline namespace v0_1_0 {
namespace rt {

inline constexpr std::size_t kAlignment = 64;
// Buffers of at least this size start on a huge page (AlignedBuffer).
inline constexpr std::size_t kHugePageBytes = std::size_t(2) << 20;
inline constexpr std::size_t kHeaderBytes = 64;
inline constexpr std::uint32_t kWeightsVersion = 1;
inline constexpr char kWeightsMagic[8] = {'S', 'O', 'F', 'I', 'E', 'D', 'A', 'T'};

namespace detail {

inline constexpr std::uint64_t kHashIndexMul = 0x9E3779B97F4A7C15ull;
inline constexpr std::uint64_t kHashLengthMul = 0xC2B2AE3D27D4EB4Full;

// MurmurHash3's 64-bit finalizer: a bijection, so distinct words stay distinct.
inline std::uint64_t fmix64(std::uint64_t x) {
    x ^= x >> 33;
    x *= 0xFF51AFD7ED558CCDull;
    x ^= x >> 33;
    x *= 0xC4CEB9FE1A85EC53ull;
    x ^= x >> 33;
    return x;
}

inline std::uint64_t load_le64(const unsigned char* p) {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}

inline std::uint32_t load_le32(const unsigned char* p) {
    return static_cast<std::uint32_t>(load_le64(p) & 0xFFFFFFFFull);
}

// `path` against the working directory, its "." and ".." steps folded: for messages, since a
// relative path depends on where the program runs, which the reader rarely knows. As given
// where there is no getcwd.
inline std::string absolute_path(const std::string& path) {
#ifdef SOFIE_RT_HAS_GETCWD
    std::string full = path;
    if (path.empty() || path[0] != '/') {
        char cwd[4096];
        if (::getcwd(cwd, sizeof cwd) == nullptr) return path;
        full = std::string(cwd) + "/" + path;
    }
    std::string out;
    for (std::size_t i = 0; i <= full.size();) {
        std::size_t end = full.find('/', i);
        if (end == std::string::npos) end = full.size();
        const std::string step = full.substr(i, end - i);
        if (step == "..") {
            const std::size_t slash = out.find_last_of('/');
            out.erase(slash == std::string::npos ? 0 : slash);
        } else if (!step.empty() && step != ".") {
            out += "/" + step;
        }
        i = end + 1;
    }
    return out.empty() ? "/" : out;
#else
    return path;
#endif
}

inline bool host_is_little_endian() {
    const std::uint32_t one = 1;
    unsigned char first;
    std::memcpy(&first, &one, 1);
    return first == 1;
}

}  // namespace detail

// h = fmix(sum_i fmix(word_i ^ (i+1)*K1) ^ n*K2).
// A sum (rather than a chained state) lets numpy vectorize the Python twin;
// mixing the word index into each term keeps it order-sensitive. The tail is
// zero-padded into one last word; the length term tells "ab" from "ab\0".
inline std::uint64_t checksum(const void* data, std::size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    const std::size_t n_words = n / 8;
    const bool little = detail::host_is_little_endian();
    std::uint64_t sum = 0;
    std::uint64_t index_key = 0;
    for (std::size_t i = 0; i < n_words; ++i) {
        std::uint64_t w;
        if (little) {
            std::memcpy(&w, p + 8 * i, 8);
        } else {
            w = detail::load_le64(p + 8 * i);
        }
        index_key += detail::kHashIndexMul;
        sum += detail::fmix64(w ^ index_key);
    }
    if (const std::size_t tail = n % 8; tail != 0) {
        unsigned char last[8] = {};
        std::memcpy(last, p + 8 * n_words, tail);
        index_key += detail::kHashIndexMul;
        sum += detail::fmix64(detail::load_le64(last) ^ index_key);
    }
    return detail::fmix64(sum ^ (static_cast<std::uint64_t>(n) * detail::kHashLengthMul));
}

// Owns one 64-byte aligned allocation, sized once. One of at least kHugePageBytes (a CNN's
// weights, its arena) starts on a 2 MiB boundary, is rounded up to whole 2 MiB pages and, on
// Linux, is advised for transparent huge pages (madvise MADV_HUGEPAGE: taken where
// /sys/kernel/mm/transparent_hugepage/enabled is "madvise", the usual default, or "always").
// A conv streams its weights and activations through far more 4 KiB pages than the TLB
// covers: on the Intel host, with huge pages, resnet18 took 0.91 of the time, resnet50 0.94,
// mobilenet_v2 0.95, efficientnet_b0 0.97. The cost is up to 2 MiB more memory per buffer.
class AlignedBuffer {
public:
    AlignedBuffer() = default;
    explicit AlignedBuffer(std::size_t bytes)
        : data_(bytes == 0 ? nullptr
                           : static_cast<std::byte*>(::operator new(
                                 round_up(bytes), std::align_val_t{alignment(bytes)}))),
          size_(bytes) {
#if SOFIE_HUGE_PAGES && defined(__linux__) && defined(MADV_HUGEPAGE)
        // advice only: where the kernel has no huge pages the buffer keeps 4 KiB ones
        if (alignment(bytes) == kHugePageBytes) (void)::madvise(data_, round_up(bytes), MADV_HUGEPAGE);
#endif
    }
    ~AlignedBuffer() { release(); }

    AlignedBuffer(const AlignedBuffer&) = delete;
    AlignedBuffer& operator=(const AlignedBuffer&) = delete;
    AlignedBuffer(AlignedBuffer&& other) noexcept
        : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
    AlignedBuffer& operator=(AlignedBuffer&& other) noexcept {
        if (this != &other) {
            release();
            data_ = std::exchange(other.data_, nullptr);
            size_ = std::exchange(other.size_, 0);
        }
        return *this;
    }

    std::byte* data() { return data_; }
    const std::byte* data() const { return data_; }
    std::size_t size() const { return size_; }

private:
    static std::size_t alignment(std::size_t bytes) {
        return SOFIE_HUGE_PAGES && bytes >= kHugePageBytes ? kHugePageBytes : kAlignment;
    }
    // Rounding up lets vector loads that overrun the logical end stay inside
    // the allocation.
    static std::size_t round_up(std::size_t bytes) {
        return (bytes + alignment(bytes) - 1) / alignment(bytes) * alignment(bytes);
    }
    void release() {
        if (data_ != nullptr) ::operator delete(data_, std::align_val_t{alignment(size_)});
        data_ = nullptr;
        size_ = 0;
    }

    std::byte* data_ = nullptr;
    std::size_t size_ = 0;
};

// The validated payload of a weights file. Immutable after construction, so
// one instance can be shared (std::shared_ptr<const WeightFile>) by any number
// of sessions on any number of threads.
class WeightFile {
public:
    WeightFile(const std::string& path, std::uint64_t expected_payload_bytes,
               std::uint64_t expected_fingerprint, std::uint32_t expected_n_tensors)
        : path_(path) {
        File file(std::fopen(path.c_str(), "rb"));
        if (!file.f) fail("cannot open file (missing or unreadable)");

        unsigned char header[kHeaderBytes];
        const std::size_t got_header = std::fread(header, 1, kHeaderBytes, file.f);
        if (got_header < kHeaderBytes) {
            fail("file is too short for the " + std::to_string(kHeaderBytes) +
                 "-byte header (" + std::to_string(got_header) + " bytes)");
        }
        if (std::memcmp(header, kWeightsMagic, sizeof kWeightsMagic) != 0) {
            fail("not a sofie weights file (bad magic)");
        }
        const std::uint32_t version = detail::load_le32(header + 8);
        const std::uint32_t n_tensors = detail::load_le32(header + 12);
        const std::uint64_t payload_bytes = detail::load_le64(header + 16);
        const std::uint64_t stored_checksum = detail::load_le64(header + 24);
        const std::uint64_t fingerprint = detail::load_le64(header + 32);

        if (version != kWeightsVersion) {
            fail("unsupported format version " + std::to_string(version) + " (expected " +
                 std::to_string(kWeightsVersion) + ")");
        }
        // Checked before the sizes: a file from another model usually has other
        // sizes too, and "different model" is the more useful diagnosis.
        if (fingerprint != expected_fingerprint) {
            fail("weights belong to a different model (fingerprint " + hex(fingerprint) +
                 ", expected " + hex(expected_fingerprint) + ")");
        }
        if (payload_bytes != expected_payload_bytes) {
            fail("size mismatch: expected " + std::to_string(expected_payload_bytes) +
                 " payload bytes, got " + std::to_string(payload_bytes));
        }
        if (n_tensors != expected_n_tensors) {
            fail("size mismatch: expected " + std::to_string(expected_n_tensors) +
                 " tensors, got " + std::to_string(n_tensors));
        }

        buffer_ = AlignedBuffer(static_cast<std::size_t>(payload_bytes));
        const std::size_t got = payload_bytes == 0
                                    ? 0
                                    : std::fread(buffer_.data(), 1, buffer_.size(), file.f);
        if (got != payload_bytes) {
            fail("truncated payload: expected " + std::to_string(payload_bytes) +
                 " bytes, got " + std::to_string(got));
        }
        if (std::fgetc(file.f) != EOF) {
            fail("size mismatch: trailing bytes after the " + std::to_string(payload_bytes) +
                 "-byte payload");
        }
        if (checksum(buffer_.data(), buffer_.size()) != stored_checksum) {
            fail("corrupt (checksum mismatch)");
        }
    }

    // A copy of other's payload in memory of its own (SessionBase's private weights); copies
    // are otherwise refused, so that sharing is never silently lost.
    struct PrivateCopy {};
    WeightFile(const WeightFile& other, PrivateCopy) : path_(other.path_), buffer_(other.buffer_.size()) {
        if (buffer_.size() != 0) std::memcpy(buffer_.data(), other.buffer_.data(), buffer_.size());
    }

    WeightFile(const WeightFile&) = delete;
    WeightFile& operator=(const WeightFile&) = delete;

    // byte_offset is a payload offset as compiled into the model header.
    template <class T>
    const T* data(std::size_t byte_offset) const {
        return reinterpret_cast<const T*>(buffer_.data() + byte_offset);
    }
    std::size_t payload_bytes() const { return buffer_.size(); }
    const std::string& path() const { return path_; }

private:
    struct File {
        explicit File(std::FILE* file) : f(file) {}
        ~File() {
            if (f) std::fclose(f);
        }
        File(const File&) = delete;
        File& operator=(const File&) = delete;
        std::FILE* f;
    };

    static std::string hex(std::uint64_t v) {
        char buf[19];
        std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(v));
        return buf;
    }

    // names the file by its absolute path (detail::absolute_path says why)
    [[noreturn]] void fail(const std::string& problem) const {
        throw std::runtime_error("sofie weights '" + detail::absolute_path(path_) + "': " + problem);
    }

    std::string path_;
    AlignedBuffer buffer_;
};

}  // namespace rt
}  // namespace v0_1_0
}  // namespace sofie

#endif  // SOFIE_RT_WEIGHTS_HXX_V0_1_0
