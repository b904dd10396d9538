"""Attributes a wrapper shares with the object it wraps."""

from __future__ import annotations

from typing import Any, Generic, TypeVar, overload

V = TypeVar("V")


class Through(Generic[V]):
    """An attribute of the object a wrapper holds in its attribute ``holder``, read and
    written through, so setting it on the wrapper changes the object that does the work."""

    def __init__(self, holder: str) -> None:
        self.holder = holder
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Through[V]: ...

    @overload
    def __get__(self, obj: object, owner: type | None = None) -> V: ...

    def __get__(self, obj: object | None, owner: type | None = None) -> Through[V] | V:
        if obj is None:
            return self
        value: V = getattr(getattr(obj, self.holder), self.name)
        return value

    def __set__(self, obj: Any, value: V) -> None:
        setattr(getattr(obj, self.holder), self.name, value)
