// Float32 arrays in raw binary files, as the runtime tests' numpy side writes and reads them
// (ndarray.tofile / np.fromfile).
#ifndef SOFIE_TESTS_FLOAT_FILES_HXX
#define SOFIE_TESTS_FLOAT_FILES_HXX

#include <algorithm>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

inline std::vector<float> read_floats(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    std::vector<float> out(bytes.size() / sizeof(float));
    std::copy(bytes.begin(), bytes.end(), reinterpret_cast<char*>(out.data()));
    return out;
}

inline void write_floats(const std::string& path, const float* v, std::size_t n) {
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(v), std::streamsize(n * sizeof(float)));
}

#endif  // SOFIE_TESTS_FLOAT_FILES_HXX
