"""The typed configuration: defaults, YAML files, --set overrides and their errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipelines.config import ConfigError, WukongConfig, describe, dump_yaml, load_config, parse_override


def test_defaults_are_wukong_thresholds():
    cfg = load_config()
    assert cfg.filter.image.min_side == 200
    assert cfg.filter.image.max_aspect_ratio == 3.0


def test_yaml_file_then_overrides_in_order(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("download:\n  retries: 5\n  image_size: 256\nray:\n  num_cpus: 2\n", encoding="utf-8")
    cfg = load_config(f, ["download.retries=1", "download.resize_mode=center_crop"])
    assert cfg.download.retries == 1
    assert cfg.download.image_size == 256
    assert cfg.download.resize_mode == "center_crop"
    assert cfg.ray.num_cpus == 2
    # Untouched sections keep their defaults.
    assert cfg.dedup == WukongConfig().dedup


def test_override_types_are_checked():
    with pytest.raises(ConfigError, match="download.retries: expected an integer"):
        load_config(None, ["download.retries=many"])
    with pytest.raises(ConfigError, match="expected true/false"):
        load_config(None, ["download.allow_private=maybe"])
    with pytest.raises(ConfigError, match="unknown configuration key download.retriez"):
        load_config(None, ["download.retriez=1"])
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_override("download.retries")


def test_lists_and_optionals():
    cfg = load_config(None, ["download.allowed_addresses=[127.0.0.1:8080, 10.0.0.0/8]",
                             "ray.num_cpus=null"])
    assert cfg.download.allowed_addresses == ["127.0.0.1:8080", "10.0.0.0/8"]
    assert cfg.ray.num_cpus is None
    cfg = load_config(None, ["download.allowed_addresses=127.0.0.1,::1"])
    assert cfg.download.allowed_addresses == ["127.0.0.1", "::1"]


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(bad)


def test_dump_roundtrips(tmp_path):
    cfg = load_config(None, ["download.retries=7"])
    f = tmp_path / "dump.yaml"
    f.write_text(dump_yaml(cfg), encoding="utf-8")
    assert load_config(f) == cfg


def test_describe_lists_every_leaf():
    keys = dict(describe())
    assert keys["download.retries"] == WukongConfig().download.retries
    assert "ray.temp_dir" in keys


def test_cli_reports_bad_override_in_one_line():
    proc = subprocess.run([sys.executable, "-m", "pipelines", "config", "--set", "download.retries=x"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "download.retries" in proc.stderr


def test_configuration_reference_is_current():
    """docs/configuration.md is `wukong config --doc`: regenerate it when a config field changes."""
    from pathlib import Path

    from pipelines.config_doc import render
    doc = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
    assert doc.read_text(encoding="utf-8") == render(), "run: make config-doc"


def test_every_field_is_documented():
    from pipelines.config_doc import _rows
    undocumented = [key for key, _, doc in _rows(WukongConfig()) if not doc]
    assert len(undocumented) <= 5, undocumented
