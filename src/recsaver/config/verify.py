"""The text of a Rec-SAVER verify mode, parsed and checked (the modes' arithmetic: metrics/verification.py)."""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("none", "exact", "1-off", "prob", "calibrated", "calibrated-1-off")
MODE_HELP = "none | exact | 1-off | prob:TAU (0 < TAU <= 1) | calibrated | calibrated-1-off"


@dataclass(frozen=True)
class VerifyMode:
    """A parsed mode: `kind` one of KINDS, `tau` for prob. `str()` gives the canonical text."""

    kind: str
    tau: float | None = None

    def __str__(self) -> str:
        return f"prob:{self.tau:g}" if self.kind == "prob" else self.kind

    @property
    def needs_probs(self) -> bool:
        return self.kind in ("prob", "calibrated", "calibrated-1-off")

    @property
    def needs_content_free(self) -> bool:
        return self.kind.startswith("calibrated")


def parse_mode(text: str) -> VerifyMode:
    """`exact`, `1-off`, `none`, `prob:0.4`, `calibrated`, `calibrated-1-off`; a ValueError names the forms."""
    value = str(text).strip()
    if value.startswith("prob:"):
        try:
            tau = float(value[len("prob:"):])
        except ValueError:
            tau = float("nan")
        if not 0 < tau <= 1:
            raise ValueError(f"verify mode {text!r}: TAU must be a number in (0, 1], e.g. prob:0.4")
        return VerifyMode("prob", tau)
    if value not in KINDS or value == "prob":
        raise ValueError(f"verify mode {text!r} is unknown; one of: {MODE_HELP}")
    return VerifyMode(value)
