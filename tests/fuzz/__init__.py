"""Fuzz targets for every decoder and entry point (atheris for `make fuzz`, hypothesis in CI)."""
