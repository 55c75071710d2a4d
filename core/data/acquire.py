"""Acquisition: make sure the dataset's raw files are in `data/01_raw/`, copied from a local
folder (`WORKBENCH_DATA_DIR` / `KOBE_DATA_DIR`) or downloaded from their public addresses, each
checked against its published SHA-256 before it lands.
"""
from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import requests

from core.config import Settings
from core.errors import ChecksumError, DataUnavailableError
from core.files import atomic_write, sha256_file
from core.progress import ProgressFn, report, scaled


# --------------------------------------------------------------------------- acquisition
@dataclass(frozen=True)
class AcquireSummary:
    """Where each raw file came from: 'present', 'copied' or 'downloaded'."""

    files: dict[str, str]
    raw_dir: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def offline_message(settings: Settings) -> str:
    """The paragraph shown when the raw files can be neither found nor downloaded."""
    spec = settings.dataset
    files = [s.file for s in spec.sources]
    names = " and ".join(files)
    hosts = sorted({requests.utils.urlparse(s.url).hostname or "" for s in spec.sources if s.url})
    where = f" from {', '.join(hosts)}" if hosts else ""
    return (
        f"The {spec.title} data is missing and could not be downloaded. The workbench needs "
        f"{len(files)} file{'s' if len(files) != 1 else ''}, {names}{where}. "
        f"Either put them in {settings.raw_dir}, or set WORKBENCH_DATA_DIR (or KOBE_DATA_DIR) to a folder "
        f"that holds them, then try again; their SHA-256 sums are checked either way."
    )


def _verify(tmp: Path, name: str, expected: str) -> None:
    if not expected:
        return  # a source without a published sum (e.g. the analyst's own file)
    actual = sha256_file(tmp)
    if actual != expected:
        raise ChecksumError(
            f"{name} does not match its published checksum (expected SHA-256 {expected}, got {actual}); "
            f"it was not used. Replace it with the original file."
        )


def _download(url: str, dest: Path, timeout: float, on_progress: ProgressFn, name: str) -> None:
    with requests.get(url, stream=True, timeout=timeout) as resp:
        resp.raise_for_status()
        total = int(resp.headers.get("content-length") or 0)
        done = 0
        with open(dest, "wb") as fh:
            for block in resp.iter_content(chunk_size=1 << 16):
                fh.write(block)
                done += len(block)
                if total:
                    report(on_progress, done / total, f"Downloading {name}")


def origin_text(settings: Settings) -> str:
    """Where `acquire` takes the raw files from, in words (as it decides: present files are kept,
    else copied from the data folder when one is set, else downloaded)."""
    sources = settings.dataset.sources
    missing = [s for s in sources if not (settings.raw_dir / s.file).exists()]
    if not missing:
        return f"the raw files are read from {settings.raw_dir}"
    if settings.source_dir is not None:
        return f"the raw files are copied from {settings.source_dir} (WORKBENCH_DATA_DIR or KOBE_DATA_DIR)"
    if all(s.url for s in missing):
        return "the raw files are downloaded from their public addresses"
    return f"the raw files are read from {settings.raw_dir}"


def acquire(settings: Settings, on_progress: ProgressFn = None) -> AcquireSummary:
    """Make sure both raw files are in `data/01_raw/` and match their checksums.

    A present, valid file is kept; otherwise it is copied from `KOBE_DATA_DIR` when set,
    else downloaded from its public address. Each file is verified before it replaces
    anything (temp file, checksum, rename), so a bad file never lands in `data/01_raw/`.
    """
    origin: dict[str, str] = {}
    sources = settings.dataset.sources
    n = len(sources)
    for i, source in enumerate(sources):
        name, url, expected = source.file, source.url, source.sha256
        step = scaled(on_progress, i / n, (i + 1) / n)
        dest = settings.raw_dir / name
        if dest.exists() and (not expected or sha256_file(dest) == expected):
            origin[name] = "present"
            report(step, 1.0, f"{name} present")
            continue
        if settings.source_dir is not None:
            src = settings.source_dir / name
            if not src.exists():
                raise DataUnavailableError(
                    f"The data folder is set to {settings.source_dir} (WORKBENCH_DATA_DIR or KOBE_DATA_DIR), "
                    f"but {name} is not there. Put the file there or unset the variable to download it."
                )
            def copy(tmp: Path, src: Path = src, name: str = name, expected: str = expected) -> None:
                shutil.copyfile(src, tmp)
                _verify(tmp, name, expected)

            atomic_write(dest, copy)
            origin[name] = "copied"
        elif not url:
            raise DataUnavailableError(
                f"{name} is missing from {settings.raw_dir} and has no download address; put it there "
                f"or set WORKBENCH_DATA_DIR to a folder that holds it.")
        else:
            def fetch(tmp: Path, url: str = url, name: str = name, expected: str = expected) -> None:
                try:
                    _download(url, tmp, settings.download_timeout_s, step, name)
                except requests.RequestException as err:
                    host = requests.utils.urlparse(url).hostname
                    raise DataUnavailableError(
                        offline_message(settings) + f" ({type(err).__name__}: could not download from {host}.)"
                    ) from err
                _verify(tmp, name, expected)

            atomic_write(dest, fetch)
            origin[name] = "downloaded"
        report(step, 1.0, f"{name} {origin[name]}")
    return AcquireSummary(files=origin, raw_dir=str(settings.raw_dir))
