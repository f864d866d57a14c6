"""The two segmentation tasks and their classes, in the order the labels use."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Task:
    """A segmentation task: its name and class names; label value ``i`` is ``classes[i]``."""

    name: str  # "cardiac" or "abdominal"
    classes: tuple[str, ...]  # class names; index 0 is background

    @property
    def n_classes(self) -> int:
        """Number of classes, background included."""
        return len(self.classes)

    @property
    def foreground(self) -> tuple[str, ...]:
        """Class names without the background."""
        return self.classes[1:]


CARDIAC = Task("cardiac", ("background", "MYO", "LAC", "LVC", "AA"))
ABDOMINAL = Task("abdominal", ("background", "liver", "right kidney", "left kidney", "spleen"))
TASKS: dict[str, Task] = {t.name: t for t in (CARDIAC, ABDOMINAL)}
MODALITIES = ("mr", "ct")


def get_task(name: str) -> Task:
    """The task called ``name``; ``ValueError`` naming the choices otherwise."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; choose one of {sorted(TASKS)}") from None
