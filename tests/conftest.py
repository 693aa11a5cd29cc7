"""Shared fixtures: one real local Ray per test session, started in a project-local temp dir."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def ray_local(tmp_path_factory):
    """A real local Ray (2 CPUs, small object store, no dashboard) shared by the whole session."""
    from pipelines.config import RayConfig
    from pipelines.ray_runtime import init_ray, shutdown_ray

    temp = tmp_path_factory.mktemp("ray")
    cfg = RayConfig(temp_dir=str(temp), include_dashboard=False, num_cpus=2, object_store_memory_mb=256)
    saved = os.environ.pop("RAY_ADDRESS", None)
    info = init_ray(cfg)
    yield info
    shutdown_ray()
    if saved is not None:
        os.environ["RAY_ADDRESS"] = saved
