"""The examples in the docstrings of every module of ``sigil.transforms`` run and pass."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import sigil.transforms

MODULES = sorted(m.name for m in pkgutil.iter_modules(sigil.transforms.__path__))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_pass(name):
    module = importlib.import_module(f"sigil.transforms.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {module.__name__} failed"
