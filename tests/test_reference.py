"""README's reference tables are generated from the Args and the config keys, and current."""

from __future__ import annotations

import dataclasses

from components.tools import reference


def test_readme_tables_are_current():
    text = reference.README.read_text(encoding="utf-8")
    assert reference.render(text) == text, "run: python -m components docs --write"


def test_every_args_field_is_documented_with_its_default():
    for cls in reference.ARGS:
        docs = reference._field_docs(cls)
        assert set(docs) == {f.name for f in dataclasses.fields(cls)}
        for name, (_, doc) in docs.items():
            assert doc, f"{cls.__name__}.{name} has no #: comment"
            field = next(f for f in dataclasses.fields(cls) if f.name == name)
            has_default = (
                field.default is not dataclasses.MISSING
                or field.default_factory is not dataclasses.MISSING
            )
            assert ("Default" in doc) if has_default and "required" not in doc else True, (
                f"{cls.__name__}.{name}: say the default"
            )
