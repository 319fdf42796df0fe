# Shim for tools that still call setup.py; everything else lives in pyproject.toml.
# The license, in the form the building setuptools reads: an SPDX expression from 77 on
# (License-Expression), the free-text License field before. Python 3.7 builds with
# setuptools 68 at most, which refuses `license = "AGPL-3.0-only"` in pyproject.toml.
import setuptools

LICENSE = "AGPL-3.0-only"

if int(setuptools.__version__.split(".")[0]) >= 77:
    setuptools.setup(license_expression=LICENSE, license_files=["LICENSE"])
else:
    setuptools.setup(license=LICENSE, license_files=["LICENSE"])
