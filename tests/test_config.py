"""Experiment configs: strict YAML loading, typed --set overrides, errors that name file, line and key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from recsaver.config import ConfigError, ExperimentConfig, config_hash, load_config

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


BASE = """name: t
domains:
  beauty: {sample: true}
models: [llamacpp/smollm2-135m]
predict:
  limit: 2
"""


@pytest.mark.parametrize("name", sorted(p.stem for p in (REPO / "configs").glob("*.yaml")))
def test_shipped_configs_load(name: str) -> None:
    cfg = load_config(REPO / "configs" / f"{name}.yaml")
    assert isinstance(cfg, ExperimentConfig) and cfg.domains and cfg.tables
    # zero-shot grids name models; distillation grids (tables 4 and 5) name a teacher and students
    assert cfg.models or (cfg.distill is not None and cfg.distill.students)


def test_table3_is_qwen_on_fifty_balanced_examples_per_domain() -> None:
    cfg = load_config(REPO / "configs" / "table3.yaml")
    assert cfg.models == ("llamacpp/qwen2.5-0.5b",) and cfg.prepare.test_per_label == 10
    assert [d.name for d in cfg.domains] == ["beauty", "movies"] and all(d.reviews for d in cfg.domains)
    assert set(cfg.ablations) == {"none", "no-review", "no-review-no-rating", "no-description", "one-shot"}
    assert cfg.baseline and cfg.methods == ("cot", "direct")


def test_overrides_are_typed_by_the_field(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, BASE), ["predict.limit=5", "predict.grammar=false", "models=a/b,c/d",
                                              "predict.temperature=1", "name=007", "predict.limit=null",
                                              "domains.beauty.sample=false", "domains.beauty.prepared=some/dir",
                                              "references.verify=[exact, none]"])
    assert cfg.predict.limit is None and cfg.predict.grammar is False
    assert cfg.models == ("a/b", "c/d") and cfg.predict.temperature == 1.0 and isinstance(cfg.predict.temperature,
                                                                                          float)
    assert cfg.name == "007" and cfg.domains[0].prepared == "some/dir"
    assert cfg.references.verify == ("exact", "none")


def test_hash_is_stable_and_follows_every_change(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    assert config_hash(load_config(path)) == config_hash(load_config(path))
    assert config_hash(load_config(path)) != config_hash(load_config(path, ["predict.max_tokens=12"]))
    assert len(config_hash(load_config(path))) == 16


def test_unknown_key_names_file_line_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "  max_token: 3\n")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert f"{path}:7" in str(e.value) and "predict.max_token" in str(e.value) and "max_tokens" in str(e.value)


def test_wrong_type_and_bad_values_name_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"exp.yaml:6: predict.limit: expected an integer, got 'two'"):
        load_config(write(tmp_path, BASE.replace("limit: 2", "limit: two")))
    with pytest.raises(ConfigError, match=r"exp.yaml:\d+: ablations: 'no-reviews' is not one of"):
        load_config(write(tmp_path, BASE + "ablations: [none, no-reviews]\n"))
    with pytest.raises(ConfigError, match="exactly one of prepared, reviews"):
        load_config(write(tmp_path, BASE.replace("{sample: true}", "{sample: true, prepared: x}")))
    with pytest.raises(ConfigError, match="domains.cars: 'cars' is not one of beauty, movies"):
        load_config(write(tmp_path, BASE.replace("beauty:", "cars:")))
    with pytest.raises(ConfigError, match="predict.samples: samples > 1 needs temperature > 0"):
        load_config(write(tmp_path, BASE + "  samples: 4\n"))


def test_override_errors_name_the_argument(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    with pytest.raises(ConfigError, match=r"--set predict.limt=3: unknown key 'limt' in predict"):
        load_config(path, ["predict.limt=3"])
    with pytest.raises(ConfigError, match=r"--set predict.limit=abc: predict.limit: expected an integer"):
        load_config(path, ["predict.limit=abc"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config(path, ["predict.limit"])
    with pytest.raises(ConfigError, match="is not a section"):
        load_config(path, ["name.x=1"])


def test_missing_file_and_missing_required_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="domains: required key is missing"):
        load_config(write(tmp_path, "name: t\nmodels: [a/b]\n"))



def test_section_choices_are_checked_where_the_value_came_from() -> None:
    """verify, balance, targets...: the schema's `choices`, checked as each section is built."""
    for item, said in (("predict.balance=sideways", "predict.balance: balance must be one of round-robin"),
                       ("references.verify=[maybe]",
                        "references.verify: verify mode 'maybe' is unknown; one of: none | exact"),
                       ("prepare.targets=some", "prepare.targets: targets must be one of all, last")):
        with pytest.raises(ConfigError, match=re.escape(f"--set {item}: {said}")):
            load_config(REPO / "configs" / "smoke.yaml", [item])
