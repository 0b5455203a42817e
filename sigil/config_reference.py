"""The README's configuration reference, rendered from the configuration models.

Every field of :class:`sigil.schemas.config.SigilConfig` and its sections carries its
meaning as a pydantic ``description``; this module renders them with the models' defaults
as markdown, one table per section, so that the README and the models cannot drift apart
(``tests/test_config_docs.py`` checks it).

``python -m sigil.config_reference`` prints the reference; ``python -m
sigil.config_reference --write README.md`` replaces the text between the file's
``<!-- config-reference:start -->`` and ``<!-- config-reference:end -->`` markers.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from sigil.schemas.config import SigilConfig

START, END = "<!-- config-reference:start -->", "<!-- config-reference:end -->"


def reference_markdown() -> str:
    """The configuration reference as markdown: one row per key, its default and meaning.

    The top-level keys come first; then each section under a ``###`` heading with its
    description and a table of its keys, nested models flattened into dotted keys (``[]``
    for the items of a list). A default is written as in YAML (``none`` when unset, empty
    for a nested model, whose keys follow); a ``Literal`` key's allowed values are appended
    to its meaning unless the meaning already names each in backticks.

    Returns
    -------
    str
        Markdown ending in a newline.

    Examples
    --------
    >>> text = reference_markdown()
    >>> text.splitlines()[0]
    '| key | default | meaning |'
    >>> "| `block.lsh.threshold` | `0.5` | Jaccard threshold the bands are tuned for |" in text
    True
    """
    top, sections = [], []
    for name, field in SigilConfig.model_fields.items():
        default, models = field.get_default(call_default_factory=True), _models(field.annotation)
        if not models:
            top.append(_row(name, field, default))
            continue
        rows = [row for model, _ in models for row in _rows(model, f"{name}.", default, (SigilConfig, model))]
        intro = _meaning(field)
        sections.append(f"### `{name}`\n\n{intro[:1].upper()}{intro[1:]}.\n\n{_table(rows)}")
    return "\n\n".join([_table(top), *sections]) + "\n"


def replace_section(text: str) -> str:
    """``text`` (a README) with the part between the reference markers regenerated.

    Parameters
    ----------
    text : str
        The file's text, holding ``START`` and then ``END``.

    Returns
    -------
    str
        The text with :func:`reference_markdown` between the markers.

    Examples
    --------
    >>> replace_section(f"intro\\n{START}\\nold\\n{END}\\nrest").startswith(f"intro\\n{START}\\n\\n| key |")
    True
    """
    head, start, rest = text.partition(START)
    _, end, tail = rest.partition(END)
    if not (start and end):
        raise ValueError(f"no {START} ... {END} markers")
    return f"{head}{START}\n\n{reference_markdown()}\n{END}{tail}"


def _rows(model: type[BaseModel], prefix: str, default: Any, seen: tuple) -> Iterator[str]:
    """Rows of ``model``'s fields and, recursively, of the models they hold. ``default`` is
    the enclosing field's default: an instance overrides the class defaults of its fields
    (``graph_index.lsh`` is ``LshConfig(bands=64, rows=1)``); ``seen`` stops recursive
    models (a match rule's ``all`` of rules) at their first level."""
    for name, field in model.model_fields.items():
        key = prefix + (field.alias or name)
        value = getattr(default, name) if isinstance(default, model) else field.get_default(call_default_factory=True)
        yield _row(key, field, value)
        for sub, in_list in _models(field.annotation):
            if sub not in seen:
                yield from _rows(sub, f"{key}{'[]' if in_list else ''}.", value, (*seen, sub))


def _row(key: str, field: FieldInfo, value: Any) -> str:
    if value is PydanticUndefined:
        default = "required"
    elif value is None:
        default = "none"
    else:
        default = "" if isinstance(value, BaseModel) else f"`{_yaml(value)}`"
    return f"| `{key}` | {default} | {_meaning(field)} |"


def _meaning(field: FieldInfo) -> str:
    text = (field.description or "").replace("|", r"\|")
    allowed = [v for v, _ in _leaves(field.annotation) if isinstance(v, str)]
    if any(f"`{v}`" not in text for v in allowed):
        text += " (allowed: " + ", ".join(f"`{v}`" for v in allowed) + ")"
    return text


def _yaml(value: Any) -> str:
    """A default value as YAML flow style spells it (a blank string quoted)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(map(_yaml, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_yaml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str) and not value.strip():
        return repr(value)
    return str(value)


def _table(rows: list[str]) -> str:
    return "\n".join(["| key | default | meaning |", "|---|---|---|", *rows])


def _leaves(annotation: Any, in_list: bool = False) -> Iterator[tuple[Any, bool]]:
    """The types and ``Literal`` values an annotation is built of (through unions, lists,
    tuples and dicts), each with whether it sits inside a list or tuple."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        yield from ((arg, in_list) for arg in args)
    elif args:
        for arg in args:
            yield from _leaves(arg, in_list or origin in (list, tuple))
    else:
        yield annotation, in_list


def _models(annotation: Any) -> list[tuple[type[BaseModel], bool]]:
    return [(t, in_list) for t, in_list in _leaves(annotation) if isinstance(t, type) and issubclass(t, BaseModel)]


def main(argv: list[str] | None = None) -> None:
    """Print the reference, or with ``--write FILE`` regenerate it in FILE."""
    parser = argparse.ArgumentParser(prog="python -m sigil.config_reference", description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", type=Path, metavar="FILE",
                        help=f"replace the text between {START} and {END} in FILE")
    args = parser.parse_args(argv)
    if args.write:
        args.write.write_text(replace_section(args.write.read_text()))
    else:
        print(reference_markdown(), end="")


if __name__ == "__main__":
    main()
