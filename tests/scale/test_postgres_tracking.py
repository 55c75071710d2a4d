"""The pipeline end to end against a shared MLflow tracking server whose backend store is PostgreSQL.

A throwaway PostgreSQL cluster (initdb in a temporary folder, loopback only, a free port) and an
`mlflow server --backend-store-uri postgresql://… --serve-artifacts` on it are started once for
the module; every `python -m core` command then runs with MLFLOW_TRACKING_URI pointing at that
server, and the runs, the registered model and its aliases are looked up in PostgreSQL itself.

Without the PostgreSQL server binaries the module is skipped (CI, CI=true, fails instead:
`.ci/run` installs Debian's postgresql).
"""
from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
import requests

from core import tracking
from core.config import Settings
from core.modeling import model_io, registry

ROOT = Path(__file__).resolve().parents[2]
DB_USER = "workbench"
DB_NAME = "mlflow"
START_TIMEOUT_S = 180.0
CLI_TIMEOUT_S = 600.0


# --------------------------------------------------------------------------- helpers
def _unavailable(reason: str) -> None:
    """Skip on a developer's machine; fail in CI, where `.ci/run` installs PostgreSQL."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason + " (CI=true: .ci/run should have installed it)")
    pytest.skip(reason)


def _pg_bin_dir() -> Path | None:
    """The folder of initdb/pg_ctl: on PATH, else Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _log_tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@dataclass(frozen=True)
class TeamServer:
    """A running PostgreSQL-backed MLflow server."""

    url: str
    pg_port: int
    home: Path

    @property
    def db_uri(self) -> str:
        return f"postgresql://{DB_USER}@127.0.0.1:{self.pg_port}/{DB_NAME}"

    def sql(self, query: str, params: tuple = ()) -> list[tuple]:
        """Rows of a query run on the MLflow database itself."""
        import psycopg

        with psycopg.connect(self.db_uri, connect_timeout=10) as conn:
            return list(conn.execute(query, params).fetchall())

    def settings(self) -> Settings:
        env = {k: v for k, v in os.environ.items()}
        env["WORKBENCH_HOME"] = str(self.home)
        env["MLFLOW_TRACKING_URI"] = self.url
        return Settings.from_env(env)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["WORKBENCH_HOME"] = str(self.home)
        env["MLFLOW_TRACKING_URI"] = self.url
        env.pop("MLFLOW_REGISTRY_URI", None)
        return env


@pytest.fixture(scope="module")
def team_server() -> Iterator[TeamServer]:
    """PostgreSQL on loopback (throwaway data folder) + `mlflow server` on it, torn down after."""
    bin_dir = _pg_bin_dir()
    if bin_dir is None:
        _unavailable("PostgreSQL server binaries (initdb, pg_ctl) not found: install PostgreSQL "
                     "(Debian: apt-get install postgresql) to run the team-scale tests")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("psycopg is not installed: pip install -r requirements-scale.txt")
    prefix: list[str] = []
    owner: pwd.struct_passwd | None = None
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: use the postgres account
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            _unavailable("running as root and there is no `postgres` user to run PostgreSQL as")
        runuser = shutil.which("runuser")
        if runuser is None:
            _unavailable("running as root and `runuser` is missing (util-linux)")
        prefix = [runuser, "-u", "postgres", "--"]

    tmp = Path(tempfile.mkdtemp(prefix="kobe-team-"))  # not under pytest's root-only folder
    pg_dir, sock_dir = tmp / "pgdata", tmp / "pgsock"
    sock_dir.mkdir()
    if owner is not None:
        os.chmod(tmp, 0o755)
        os.chown(sock_dir, owner.pw_uid, owner.pw_gid)
    pg_log, mlflow_log = tmp / "postgres.log", tmp / "mlflow.log"
    pg_port, mlflow_port = _free_port(), _free_port()
    proc: subprocess.Popen | None = None
    pg_started = False
    try:
        if owner is not None:
            pg_dir.mkdir()
            os.chown(pg_dir, owner.pw_uid, owner.pw_gid)
            pg_log.touch()
            os.chown(pg_log, owner.pw_uid, owner.pw_gid)
        subprocess.run(
            [*prefix, str(bin_dir / "initdb"), "-D", str(pg_dir), "-U", DB_USER, "--auth=trust",
             "-E", "UTF8", "--no-instructions"],
            check=True, capture_output=True, timeout=120,
        )
        opts = f"-c listen_addresses=127.0.0.1 -p {pg_port} -k {sock_dir}"
        started = subprocess.run(
            [*prefix, str(bin_dir / "pg_ctl"), "-D", str(pg_dir), "-o", opts, "-l", str(pg_log),
             "-w", "-t", "60", "start"],
            capture_output=True, timeout=90,
        )
        if started.returncode != 0:
            pytest.fail(f"PostgreSQL did not start: {started.stderr.decode()}\n{_log_tail(pg_log)}")
        pg_started = True
        import psycopg

        with psycopg.connect(f"postgresql://{DB_USER}@127.0.0.1:{pg_port}/postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DB_NAME}")

        backend = f"postgresql://{DB_USER}@127.0.0.1:{pg_port}/{DB_NAME}"
        with open(mlflow_log, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend,
                 "--artifacts-destination", str(tmp / "artifacts"), "--serve-artifacts",
                 "--host", "127.0.0.1", "--port", str(mlflow_port), "--workers", "1"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=tmp,
            )
        url = f"http://127.0.0.1:{mlflow_port}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mlflow server exited with {proc.returncode}:\n{_log_tail(mlflow_log)}")
            try:
                if requests.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not answer within {START_TIMEOUT_S:.0f} s:\n{_log_tail(mlflow_log)}")
            time.sleep(0.5)
        home = tmp / "home"
        home.mkdir()
        yield TeamServer(url=url, pg_port=pg_port, home=home)
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the server and its workers share a session
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:  # uvicorn's graceful shutdown can take 20 s or more
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        if pg_started:
            subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(pg_dir), "-m", "fast", "-w", "stop"],
                           capture_output=True, timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)


def run_cli(server: TeamServer, *args: str, json_flag: bool = True) -> dict:
    """`python -m core <args> --json` against the team server; the printed JSON object."""
    done = subprocess.run(
        [sys.executable, "-m", "core", *args, *(["--json"] if json_flag else [])],
        cwd=ROOT, env=server.env(), capture_output=True, text=True, timeout=CLI_TIMEOUT_S,
    )
    assert done.returncode == 0, f"`python -m core {' '.join(args)}` failed:\n{done.stderr[-3000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def journey(team_server: TeamServer) -> dict:
    """prepare, then train with a tiny budget, both through the team server."""
    return {"prepare": run_cli(team_server, "prepare"),
            "train": run_cli(team_server, "train", "--models", "lr", "--folds", "2", "--n-iter", "1")}


# --------------------------------------------------------------------------- tests
def test_store_description_names_the_server_and_its_sql_backend(team_server: TeamServer) -> None:
    text = tracking.store_description(team_server.settings())
    assert text.startswith(f"MLflow server at {team_server.url}")
    assert "SqlStore" in text


def test_prepare_run_is_stored_in_postgres(team_server: TeamServer, journey: dict) -> None:
    run_id = journey["prepare"]["mlflow_run_id"]
    rows = team_server.sql(
        "SELECT r.name, r.status, e.name FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id "
        "WHERE r.run_uuid = %s", (run_id,))
    assert rows == [("PreparacaoDados", "FINISHED", "kobe-workbench")]
    logged = dict(team_server.sql("SELECT key, value FROM latest_metrics WHERE run_uuid = %s", (run_id,)))
    assert logged["rows_prod"] == journey["prepare"]["prod_rows"]


def test_train_logs_runs_to_postgres(team_server: TeamServer, journey: dict) -> None:
    names = {r[0] for r in team_server.sql("SELECT name FROM runs WHERE status = 'FINISHED'")}
    assert len(names - {"PreparacaoDados"}) >= 1


def test_champion_alias_is_stored_in_postgres(team_server: TeamServer, journey: dict) -> None:
    settings = team_server.settings()
    champ = registry.champion(settings)
    assert champ is not None
    aliases = team_server.sql(
        "SELECT alias, version FROM registered_model_aliases WHERE name = %s", (settings.model_name,))
    assert (registry.CHAMPION, int(champ.version)) in aliases
    versions = team_server.sql(
        "SELECT version, source FROM model_versions WHERE name = %s", (settings.model_name,))
    assert int(champ.version) in {v for v, _ in versions}


def test_champion_loads_through_the_server(team_server: TeamServer, journey: dict) -> None:
    from core.data import preparation

    settings = team_server.settings()
    version, model = registry.load_model(settings)
    prod = preparation.load_split(settings, "prod")
    proba = model_io.predict_proba(model, prod.head(50), settings.features)
    assert version == registry.champion(settings).version
    assert proba.shape == (50,) and ((proba > 0) & (proba < 1)).all()


def test_serve_resolves_the_champion_through_the_server(team_server: TeamServer, journey: dict) -> None:
    from core.serving import server as model_server

    settings = team_server.settings().replace(serve_port=_free_port())
    started = model_server.start(settings)
    try:
        assert started.model_version == registry.champion(settings).version
        row = {"lat": 34.0443, "lon": -118.2698, "minutes_remaining": 5, "period": 2,
               "playoffs": 0, "shot_distance": 15}
        pred = run_cli(team_server, "predict", "--json", json.dumps(row), "--url", started.url,
                       json_flag=False)
        assert 0.0 < pred["proba_made"] < 1.0
        assert str(pred["model_version"]) == started.model_version
    finally:
        model_server.stop(settings)
    assert not model_server.status(settings).running


def _run_row(server: TeamServer, run_id: str) -> tuple:
    rows = server.sql("SELECT name, status FROM runs WHERE run_uuid = %s", (run_id,))
    assert len(rows) == 1, f"run {run_id} is not in PostgreSQL"
    return rows[0]


@pytest.fixture(scope="module")
def applied(team_server: TeamServer, journey: dict) -> dict:
    """The production batch scored in process (`apply`) and on Spark local[2] (`apply --engine spark`)."""
    from core.scoring import spark as spark_scoring

    if not (spark_scoring.available() and shutil.which("java")):
        _unavailable("pyspark or a Java runtime is missing: pip install -r requirements-scale.txt; apt-get "
                     "install default-jre-headless")
    batch = str(team_server.settings().prod_filtered_path)
    return {"in_process": run_cli(team_server, "apply", "--batch", batch, "--in-process"),
            "spark": run_cli(team_server, "apply", "--engine", "spark", "--batch", batch, "--master", "local[2]")}


def test_apply_in_process_logs_to_postgres(team_server: TeamServer, applied: dict) -> None:
    result = applied["in_process"]
    assert _run_row(team_server, result["mlflow_run_id"]) == ("PipelineAplicacao", "FINISHED")


def test_apply_on_spark_logs_to_postgres_and_matches_in_process(team_server: TeamServer, applied: dict) -> None:
    result = applied["spark"]
    settings = team_server.settings()
    assert result["path"] == "spark" and result["rows"] == journey_prod_rows(settings)
    assert result["model_version"] == registry.champion(settings).version
    assert _run_row(team_server, result["mlflow_run_id"]) == ("PipelineAplicacao", "FINISHED")
    params = dict(team_server.sql("SELECT key, value FROM params WHERE run_uuid = %s", (result["mlflow_run_id"],)))
    assert params["engine"] == "spark" and params["spark_master"] == "local[2]"
    for name, value in applied["in_process"]["metrics"].items():
        assert result["metrics"][name] == pytest.approx(value, abs=1e-6, nan_ok=True), name


def journey_prod_rows(settings: Settings) -> int:
    import pyarrow.parquet as pq

    return pq.read_metadata(settings.prod_filtered_path).num_rows


def test_drift_logs_a_monitoring_run_to_postgres(team_server: TeamServer, journey: dict) -> None:
    settings = team_server.settings()
    run_cli(team_server, "drift", "--batch", str(settings.prod_filtered_path), "--no-domain", "--wait-for-mlflow")
    names = team_server.sql(
        "SELECT name FROM runs WHERE status = 'FINISHED' AND name NOT IN ('PreparacaoDados', 'PipelineAplicacao')")
    assert any("Monitoramento" in n for (n,) in names), names


def test_retrain_logs_to_postgres_and_keeps_aliases_there(
    team_server: TeamServer, journey: dict, applied: dict
) -> None:
    settings = team_server.settings()
    result = run_cli(team_server, "retrain", "--batch", str(settings.prod_filtered_path))
    assert result["mlflow_run_id"]
    name, status = _run_row(team_server, result["mlflow_run_id"])
    assert status == "FINISHED"
    champ = registry.champion(settings)
    aliases = dict(team_server.sql(
        "SELECT alias, version FROM registered_model_aliases WHERE name = %s", (settings.model_name,)))
    assert aliases[registry.CHAMPION] == int(champ.version)
    if result["promoted"]:
        assert registry.PREVIOUS in aliases


def test_pages_work_against_the_team_server(
    team_server: TeamServer, journey: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pages, unchanged, on the PostgreSQL-backed server: the home page names it."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("WORKBENCH_HOME", str(team_server.home))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", team_server.url)
    champ = registry.champion(team_server.settings())
    home = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    assert not home.exception
    assert {m.label: m.value for m in home.metric}["Champion model"] == f"v{champ.version}"
    assert any(f"MLflow server at {team_server.url}" in c.value for c in home.caption)
    for page in ("pages/3_Compare.py", "pages/5_Production.py", "pages/6_Drift.py"):
        at = AppTest.from_file(str(ROOT / page), default_timeout=120).run()
        assert not at.exception, page
