"""The champion's files put in place for the model server (`put_champion_in_place`).

Which version is champion, and where its files are, is read from the registry
(`core.modeling.registry`: on the embedded store without importing MLflow, so the starting
server process has the machine to itself meanwhile).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from core.config import Settings
from core.modeling import registry
from core.modeling.model_version import ModelVersion


def clear(path: Path) -> None:
    """Remove a file, symlink or folder at `path` (nothing there is fine)."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def _place_model(settings: Settings, model: ModelVersion, folder: Path) -> None:
    """Make `folder` the files of `model`, in one step (the server process waits for it):
    a symlink to them when the store keeps them in a local folder (registered files never
    change), else a downloaded copy."""
    tmp = folder.with_name(f"{folder.name}.{os.getpid()}.tmp")
    clear(tmp)
    files = registry.local_files(model)
    if files is not None:
        os.symlink(files, tmp, target_is_directory=True)
        os.replace(tmp, folder)
        return
    uri = registry.download_uri(settings, model)
    parts = urlsplit(uri)
    if parts.scheme in ("", "file"):
        os.symlink(url2pathname(parts.path) if parts.scheme else uri, tmp, target_is_directory=True)
    else:
        import mlflow

        tmp.mkdir(parents=True)
        got = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(tmp),
                                                       tracking_uri=settings.tracking_uri))
        if got != tmp:  # the folder's own name under dst_path
            os.replace(got, folder)
            clear(tmp)
            return
    os.replace(tmp, folder)


def put_champion_in_place(settings: Settings, folder: Path, model: ModelVersion | None = None) -> str:
    """The version served (`model`, else the champion now), with its files made `folder` (see
    `_place_model`). TrackingError without a champion."""
    model = model or registry.require_champion(settings)
    _place_model(settings, model, folder)
    return model.version
