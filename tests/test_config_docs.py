"""The README's configuration reference is the one the models render, and every
configuration field carries a description for it."""

import doctest
from pathlib import Path

from pydantic import BaseModel

from sigil import config_reference
from sigil.config_reference import replace_section
from sigil.schemas import config

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_reference_is_generated():
    text = README.read_text()
    assert text == replace_section(text), (
        "README.md's configuration reference differs from the models' descriptions and defaults: "
        "run `python -m sigil.config_reference --write README.md`")


def test_every_field_is_described():
    models = [m for m in vars(config).values()
              if isinstance(m, type) and issubclass(m, BaseModel) and m.__module__ == config.__name__]
    missing = [f"{m.__name__}.{name}" for m in models for name, field in m.model_fields.items()
               if not (field.description or "").strip()]
    assert not missing, f"configuration fields without a description: {missing}"


def test_doctests():
    assert doctest.testmod(config_reference).failed == 0
