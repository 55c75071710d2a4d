"""The champion's model as a drift check loads it: from a local joblib copy of the registered version.

The registry's artifact is in skops format, whose import alone takes seconds; a local joblib
copy of each version, written the first time from the registry's model, is loaded instead on
later checks (keyed by model name, version and run id). Which version that is, and its facts,
come from the `ModelVersion` the caller read once (`core.modeling.registry`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from core.config import Settings
from core.modeling.model_version import ModelVersion


def model_cache_path(settings: Settings, version: str, run_id: str | None) -> Path:
    """Local copy of a registered version for fast loading (see `champion_model`)."""
    return settings.monitoring_dir / "models" / f"{settings.model_name}-v{version}-{(run_id or 'x')[:12]}.joblib"


def champion_model(settings: Settings, model: ModelVersion) -> tuple[str, Any]:
    """The version's number and its scikit-learn model, from the local copy (written on first use)."""
    import joblib

    path = model_cache_path(settings, model.version, model.run_id)
    if path.exists():
        return model.version, joblib.load(path)
    from core.files import atomic_write
    from core.modeling import registry

    version, fitted = registry.load_model(settings, model)
    atomic_write(path, lambda tmp: joblib.dump(fitted, tmp))
    return version, fitted
