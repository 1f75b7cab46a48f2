"""The fast positional constructors make the very objects the dataclass __init__ makes."""

from __future__ import annotations

import dataclasses

import pytest

from ledger._frozen import positional_constructor


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Point:
    x: int
    y: int
    label: str = "p"
    cached: int | None = dataclasses.field(default=None, init=False, compare=False)


def test_positional_constructor_equals_init_and_fills_defaults() -> None:
    make = positional_constructor(Point, "x", "y")
    p = make(1, 2)
    assert type(p) is Point and p == Point(x=1, y=2)
    assert (p.x, p.y, p.label, p.cached) == (1, 2, "p", None)
    assert positional_constructor(Point, "y", "label", "x")(5, "q", 4) == Point(x=4, y=5, label="q")


def test_positional_constructor_keeps_objects_frozen() -> None:
    p = positional_constructor(Point, "x", "y")(1, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.x = 3  # type: ignore[misc]


def test_positional_constructor_needs_every_required_field() -> None:
    with pytest.raises(TypeError, match="no plain default"):
        positional_constructor(Point, "x")
    with pytest.raises(TypeError, match="unknown or repeated"):
        positional_constructor(Point, "x", "y", "z")
    with pytest.raises(TypeError, match="unknown or repeated"):
        positional_constructor(Point, "x", "y", "x")


def test_positional_constructor_refuses_what_it_would_break() -> None:
    @dataclasses.dataclass(slots=True)
    class Mutable:
        a: int

    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        a: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class Checked:
        a: int

        def __post_init__(self) -> None:
            assert self.a >= 0

    for cls in (Mutable, NoSlots):
        with pytest.raises(TypeError, match="not a frozen, slotted"):
            positional_constructor(cls, "a")
    with pytest.raises(TypeError, match="__post_init__"):
        positional_constructor(Checked, "a")
