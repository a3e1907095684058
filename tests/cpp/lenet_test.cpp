// lenet (examples/lenet.onnx, conv + BLAS) on two events, compared with onnxruntime.
// Usage: lenet_test lenet.ref. Run away from lenet.dat: the default-constructed Session finds
// it through SOFIE_lenet_WEIGHTS, which sofie_add_model defines.
#include "lenet.hxx"
#include "check.hxx"

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    TMVA_SOFIE_lenet::Session session;
    const std::size_t batch = 2;
    const std::vector<float> x = sofie_test::inputs(batch * 28 * 28);
    std::vector<float> y(batch * 10);
    session.infer(batch, x.data(), y.data());
    return sofie_test::compare(y, argv[1]);
}
