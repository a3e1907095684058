"""The `graph` dialect: ONNX-level ops, one file per op family."""
