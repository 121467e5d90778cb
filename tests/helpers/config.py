"""The shipped config composed with overrides, as the plain dict `prepare` takes."""

from __future__ import annotations

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from runner.study.schema import register_configs
from runner.util.paths import CONF_DIR

__all__ = ["compose_config"]

register_configs()


def compose_config(overrides: list[str]) -> dict:
    """The shipped config with these overrides, as the plain dict `prepare` takes."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
