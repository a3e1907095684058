def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "needs_system_blas: needs system CBLAS (libopenblas-dev) or Eigen (libeigen3-dev) headers;"
        " fails, never skips, when they are missing",
    )
