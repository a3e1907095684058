// A second translation unit including the runtime: linking it with
// kernel_driver.cpp fails if any header function is not inline.
#include "sofie_rt/sofie_rt.hxx"

std::size_t second_tu_scratch() { return sofie::rt::conv2d_scratch_floats(4, 2, 3, 3, 5, 5); }
