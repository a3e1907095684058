// particles ([N, P, 4] -> [N, 2], compiled with OPTIONS --dim P=32) on 3 events of P = 5,
// compared with onnxruntime. Usage: particles_test particles.ref, run away from particles.dat.
#include "particles.hxx"
#include "check.hxx"

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    TMVA_SOFIE_particles::Session session;
    if (session.max_dims()[0] != 32) {  // the --dim P=32 that OPTIONS passed to sofie-compile
        std::printf("max P %zu, expected 32\n", session.max_dims()[0]);
        return 1;
    }
    const std::size_t batch = 3, particles = 5;
    const std::vector<float> x = sofie_test::inputs(batch * particles * 4);
    std::vector<float> y(batch * 2);
    session.infer(batch, particles, x.data(), y.data());
    return sofie_test::compare(y, argv[1]);
}
