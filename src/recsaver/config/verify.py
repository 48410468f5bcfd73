"""The text of a Rec-SAVER verify mode, parsed and checked (the modes' arithmetic: metrics/verification.py)."""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("none", "exact", "1-off", "prob", "calibrated", "calibrated-1-off")
MODE_HELP = "none | exact | 1-off | prob:TAU (0 < TAU <= 1) | calibrated[:TAU] | calibrated-1-off[:TAU]"
TAU_KINDS = ("prob", "calibrated", "calibrated-1-off")  # `prob` needs its TAU; the calibrated ones take one


@dataclass(frozen=True)
class VerifyMode:
    """A parsed mode: `kind` one of KINDS, `tau` for prob (and optionally calibrated). `str()`: the canonical text."""

    kind: str
    tau: float | None = None

    def __str__(self) -> str:
        return self.kind if self.tau is None else f"{self.kind}:{self.tau:g}"

    @property
    def needs_probs(self) -> bool:
        return self.kind in ("prob", "calibrated", "calibrated-1-off")

    @property
    def needs_content_free(self) -> bool:
        return self.kind.startswith("calibrated")


def parse_mode(text: str) -> VerifyMode:
    """`exact`, `1-off`, `none`, `prob:0.4`, `calibrated`, `calibrated-1-off`, `calibrated-1-off:0.5`; a ValueError
    names the forms."""
    value = str(text).strip()
    kind, sep, rest = value.partition(":")
    if sep and kind in TAU_KINDS:
        try:
            tau = float(rest)
        except ValueError:
            tau = float("nan")
        if not 0 < tau <= 1:
            raise ValueError(f"verify mode {text!r}: TAU must be a number in (0, 1], e.g. {kind}:0.4")
        return VerifyMode(kind, tau)
    if value not in KINDS or value == "prob":
        raise ValueError(f"verify mode {text!r} is unknown; one of: {MODE_HELP}")
    return VerifyMode(value)
