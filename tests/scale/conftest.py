"""The Spark modules' shared pieces: `require_spark` (skip, or fail under CI=true, without pyspark
or Java) and one `local[2]` session per module (`spark`; start-up is the slow part)."""
from __future__ import annotations

import os
import shutil
from typing import Iterator

import pytest

from tests.conftest import make_settings


def require_spark() -> None:
    from core.scoring import spark as spark_scoring

    reason = None
    if not spark_scoring.available():
        reason = "pyspark is not installed (pip install -r requirements-scale.txt)"
    elif shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        reason = "no Java runtime for Spark (Debian: apt-get install default-jre-headless)"
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + " (CI=true: .ci/run should have installed it)")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One local[2] session for the module, stopped at the end."""
    require_spark()
    from core.scoring import spark as spark_scoring

    session = spark_scoring.session(make_settings(tmp_path_factory.mktemp("spark-session")), master="local[2]")
    yield session
    session.stop()
