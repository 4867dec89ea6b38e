"""Helpers for mapping tests: write a TOML mapping to a file and load it."""

from __future__ import annotations

import pathlib
from collections.abc import Callable

import pytest

from mappings import Mapping, MappingError, load_mapping


@pytest.fixture
def mapping_file(tmp_path: pathlib.Path) -> Callable[[str], pathlib.Path]:
    def write(text: str) -> pathlib.Path:
        path = tmp_path / "my.toml"
        path.write_text(text)
        return path

    return write


@pytest.fixture
def load(mapping_file: Callable[[str], pathlib.Path]) -> Callable[[str], Mapping]:
    def loaded(text: str) -> Mapping:
        return load_mapping(mapping_file(text))

    return loaded


@pytest.fixture
def problems(mapping_file: Callable[[str], pathlib.Path]) -> Callable[[str], list[str]]:
    """The problem lines of an invalid mapping, with the file path shortened to `my.toml`."""

    def found(text: str) -> list[str]:
        path = mapping_file(text)
        with pytest.raises(MappingError) as caught:
            load_mapping(path)
        assert str(caught.value) == "\n".join(caught.value.problems)
        return [line.replace(str(path), "my.toml") for line in caught.value.problems]

    return found
