"""The default pass pipeline of `sofie.compile` and `sofie-compile`.

Shapes first (constant shape operands let folding and canonicalization see static values),
then folding, canonical forms, BN folding (which wants Conv -> BN adjacent, after identity and
dropout are gone), fusion (which wants BN gone: Conv -> BN -> Relu would not fuse), cleanup,
and the memory plan last, over the final op list.
"""

DEFAULT_PIPELINE: list[str] = ["infer-shapes", "fold-constants", "canonicalize", "fold-batchnorm",
                               "fuse", "cse", "dce", "plan-memory"]
