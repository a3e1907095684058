"""Runtime support for generated sofie models: the C++ headers in sofie_rt/
and the Python side of the weights-file format."""
