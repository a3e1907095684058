// A Session given a weights file that is not there: the message names the absolute path tried.
// Usage: missing_weights_test FILE; prints the exception's message (ctest matches it).
#include "particles.hxx"

#include <cstdio>
#include <exception>

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    try {
        TMVA_SOFIE_particles::Session session(argv[1]);
    } catch (const std::exception& e) {
        std::printf("%s\n", e.what());
        return 0;
    }
    std::printf("no exception for %s\n", argv[1]);
    return 1;
}
