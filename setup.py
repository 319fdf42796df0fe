# Shim for tools that still call setup.py; everything lives in pyproject.toml.
import setuptools

setuptools.setup()
