// A user program: include the generated header, load the weights, run one event.
#include "lenet.hxx"

#include <cstdio>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s lenet.dat input.bin\n", argv[0]);
    return 1;
  }
  std::vector<float> x(28 * 28);
  std::FILE* f = std::fopen(argv[2], "rb");
  if (!f || std::fread(x.data(), sizeof(float), x.size(), f) != x.size()) {
    std::fprintf(stderr, "cannot read %s\n", argv[2]);
    return 1;
  }
  std::fclose(f);
  TMVA_SOFIE_lenet::Session session(argv[1]);
  std::vector<float> y = session.infer(x.data());
  for (float v : y) std::printf("%.6f\n", v);
  return 0;
}
