"""The examples in the docstrings run and print what they say."""

from __future__ import annotations

import doctest

import pytest

import csfmodel.api
import csfmodel.units


@pytest.mark.parametrize("module", [csfmodel.api, csfmodel.units])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
