"""Through: a wrapper's attribute that is the wrapped object's."""

from __future__ import annotations

from dataclasses import dataclass

from xnai.services.delegation import Through


@dataclass
class Engine:
    name: str
    rate: int


class Wrapper:
    name = Through[str]("engine")
    rate = Through[int]("engine")

    def __init__(self, engine: Engine) -> None:
        self.engine = engine


def test_reads_and_writes_go_to_the_wrapped_object() -> None:
    engine = Engine("piper", 22050)
    wrapper = Wrapper(engine)
    assert (wrapper.name, wrapper.rate) == ("piper", 22050)
    wrapper.rate = 16000
    engine.name = "espeak"
    assert (engine.rate, wrapper.name) == (16000, "espeak")
    assert "name" not in vars(wrapper)


def test_a_replaced_wrapped_object_is_followed() -> None:
    wrapper = Wrapper(Engine("a", 1))
    wrapper.engine = Engine("b", 2)
    assert wrapper.name == "b"


def test_the_class_attribute_is_the_descriptor() -> None:
    assert isinstance(Wrapper.name, Through)
    assert Wrapper.name.holder == "engine"
