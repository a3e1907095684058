// The runtime test drivers' files: float32 arrays in raw binary files, as the numpy side
// writes and reads them (ndarray.tofile / np.fromfile), and the case list DIR/cases.txt.
#ifndef SOFIE_TESTS_FLOAT_FILES_HXX
#define SOFIE_TESTS_FLOAT_FILES_HXX

#include <algorithm>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
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

// main() of a driver: run(dir, in, id) per line "<id> ..." of DIR/cases.txt, `in` positioned
// after the id; 2 with a usage line when DIR is missing.
template <class Run>
int run_cases(int argc, char** argv, const char* driver, Run run) {
    if (argc != 2) {
        std::cerr << "usage: " << driver << " DIR\n";
        return 2;
    }
    const std::string dir = argv[1];
    std::ifstream cases(dir + "/cases.txt");
    std::string line;
    while (std::getline(cases, line)) {
        std::istringstream in(line);
        std::string id;
        in >> id;
        run(dir, in, id);
    }
    return 0;
}

#endif  // SOFIE_TESTS_FLOAT_FILES_HXX
