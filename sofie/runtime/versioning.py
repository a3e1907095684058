"""How the runtime headers spell the sofie version, so that headers of two sofie versions
can share a translation unit (see sofie_rt/sofie_rt.hxx): an inline namespace and include
guards named for the version."""

from __future__ import annotations

import re

from sofie.version import __version__


def runtime_namespace(version: str = __version__) -> str:
    """The inline namespace inside `sofie`: `v0_1_0` for sofie 0.1.0."""
    return "v" + re.sub(r"\W", "_", version)


def include_guard(header_stem: str, version: str = __version__) -> str:
    """The include guard of sofie_rt/<header_stem>.hxx: `SOFIE_RT_BLAS_HXX_V0_1_0`."""
    return f"SOFIE_RT_{header_stem.upper()}_HXX_{runtime_namespace(version).upper()}"
