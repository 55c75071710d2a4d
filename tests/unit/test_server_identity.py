"""Each dataset's own server port (remembered in its runtime folder) and the check of who answers
(the `X-Workbench-Model` / `X-Workbench-Dataset` headers), without MLflow: a real local HTTP
server stands in for a model server that names (or does not name) what it serves."""
from __future__ import annotations

import asyncio
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest
from requests.structures import CaseInsensitiveDict

from core.config import DEFAULT_SERVE_PORT, Settings
from core.serving import asgi, client, ports, predict


def _settings(home: Path, **changes: object) -> Settings:
    return Settings(home=home).replace(**changes)


# --------------------------------------------------------------------------- port memory
def test_a_dataset_remembers_its_port_and_reuses_it_when_free(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    assert not ports.port_fixed(s) and ports.remembered_port(s) is None
    assert ports.known_port(s) == DEFAULT_SERVE_PORT  # nothing remembered: the default, not chosen yet
    mine = ports.free_port()
    ports.remember_port(s, mine)
    assert ports.port_file(s).read_text().strip() == str(mine) and ports.port_file(s).parent == s.runtime_dir
    assert ports.remembered_port(s) == mine and ports.known_port(s) == mine
    assert ports.dataset_port(s) == mine  # free: reused


def test_a_taken_remembered_port_gives_way_to_a_free_one(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        ports.remember_port(s, taken)
        chosen = ports.dataset_port(s, others=(DEFAULT_SERVE_PORT,))
        assert chosen != taken and chosen != DEFAULT_SERVE_PORT
        assert not ports.port_in_use("127.0.0.1", chosen)
    assert ports.remembered_port(s) == taken  # only a start that succeeds remembers a new port


def test_a_port_set_on_purpose_wins_over_the_remembered_one(tmp_path: Path) -> None:
    remembered = _settings(tmp_path)
    ports.remember_port(remembered, 6543)
    by_env = Settings.from_env({"WORKBENCH_HOME": str(tmp_path), "WORKBENCH_SERVE_PORT": str(DEFAULT_SERVE_PORT)},
                               dataset=remembered.dataset)
    assert by_env.serve_port_fixed and ports.port_fixed(by_env)
    assert ports.dataset_port(by_env) == DEFAULT_SERVE_PORT and ports.known_port(by_env) == DEFAULT_SERVE_PORT
    other = remembered.replace(serve_port=7001)  # settings made with another port (tests, callers)
    assert ports.port_fixed(other) and ports.dataset_port(other) == 7001 and ports.known_port(other) == 7001
    unset = Settings.from_env({"WORKBENCH_HOME": str(tmp_path)}, dataset=remembered.dataset)
    assert not unset.serve_port_fixed and ports.known_port(unset) == 6543


@pytest.mark.parametrize("text", ["", "abc", "0", "70000", "-5", "5001.5"])
def test_a_bad_port_file_is_ignored(tmp_path: Path, text: str) -> None:
    s = _settings(tmp_path)
    s.runtime_dir.mkdir(parents=True)
    ports.port_file(s).write_text(text)
    assert ports.remembered_port(s) is None and ports.known_port(s) == DEFAULT_SERVE_PORT


# --------------------------------------------------------------------------- the identity headers
def test_identity_headers_are_made_from_the_environment_and_read_back() -> None:
    env = {client.DATASET_ENV: "hmda cli", client.MODEL_ENV: "hmda/model é/12"}
    made = asgi.identity_headers(env)
    assert [name for name, _ in made] == [b"x-workbench-model", b"x-workbench-dataset"]
    assert all(value.isascii() for _, value in made)  # percent-encoded
    # header names are read case-insensitively (http.client, requests)
    found = client.read_identity(CaseInsensitiveDict({n.decode(): v.decode() for n, v in made}).get)
    assert found == client.ServerIdentity("hmda cli", "hmda/model é", "12")
    assert asgi.identity_headers({}) == ()  # a server started some other way names nothing
    assert client.read_identity({}.get) is None


def test_every_answer_carries_the_identity_headers_made_once() -> None:
    extra = tuple(client.ServerIdentity("alpha", "alpha_model", "3").headers())
    sent: list[dict] = []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 400, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"no"})

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        sent.append(message)

    # in a thread of its own: an earlier browser test can leave the main thread's event loop
    # running, and asyncio.run refuses to start inside a running loop (as in test_scoring_app)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, asgi.with_server_timing(app, extra)({"type": "http"}, receive, send)).result()
    headers = dict(sent[0]["headers"])
    assert headers[b"x-workbench-model"] == b"alpha_model/3" and headers[b"x-workbench-dataset"] == b"alpha"
    assert b"server-timing" in headers


def test_a_mismatch_names_what_the_server_serves() -> None:
    want = client.ServerIdentity("alpha", "alpha_model", "1")
    assert client.identity_problem("http://x", want, want) is None
    assert client.identity_problem("http://x", want, client.ServerIdentity("alpha", "alpha_model", None)) is None
    assert client.identity_problem("http://x", client.ServerIdentity("alpha", "alpha_model"),
                                   client.ServerIdentity("alpha", "alpha_model", "7")) is None  # any version
    for other in (client.ServerIdentity("beta", "beta_model", "1"), client.ServerIdentity("alpha", "alpha_model", "2")):
        problem = client.identity_problem("http://x", want, other)
        assert problem and other.text in problem and want.text in problem


@pytest.fixture
def fake_server() -> Iterator:
    """serve(headers, status, body) -> url: a real HTTP server answering every request so."""
    servers = []

    def serve(headers: dict[str, str], status: int = 200, body: dict | None = None) -> str:
        payload = json.dumps(body if body is not None else {"predictions": [[0.3, 0.7]]}).encode()

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                self.send_response(status)
                for name, value in {**headers, "Content-Type": "application/json"}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer

            def log_message(self, *args) -> None:
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}"

    yield serve
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def _named(identity: client.ServerIdentity) -> dict[str, str]:
    return {name.decode(): value.decode() for name, value in identity.headers()}


def test_the_client_refuses_another_datasets_answer_and_accepts_an_unnamed_one(fake_server) -> None:
    alpha = client.ServerIdentity("alpha", "alpha_model", "1")
    beta = client.ServerIdentity("beta", "beta_model", "4")
    with client.Client(fake_server(_named(beta)), features=("x",), expected=alpha) as wrong:
        with pytest.raises(client.WrongServerError, match="beta_model' version 4") as err:
            wrong.predict_rows([[1.0]])
        assert err.value.exit_code == 2
        with pytest.raises(client.WrongServerError):
            wrong.ping()  # /ping's answer names it too
    with client.Client(fake_server(_named(alpha)), features=("x",), expected=alpha) as right:
        assert right.predict_rows([[1.0]]).tolist() == [0.7] and right.last_checked
    with client.Client(fake_server({}), features=("x",), expected=alpha) as stock:
        assert stock.predict_rows([[1.0]]).tolist() == [0.7] and not stock.last_checked
        assert stock.last_identity is None


def test_another_servers_refusal_is_reported_as_the_wrong_server(fake_server) -> None:
    """The report: a row for one dataset sent to another's server printed that model's refusal."""
    beta = client.ServerIdentity("beta", "beta_model", "4")
    url = fake_server(_named(beta), status=400, body={"error_code": "BAD_REQUEST", "message": "missing column y"})
    alpha = client.ServerIdentity("alpha", "alpha_model", "1")
    with client.Client(url, features=("x",)) as shared:  # a page's cached client: no expectation of its own
        with pytest.raises(client.PredictionError):
            shared.predict_rows([[1.0]])
        with pytest.raises(client.WrongServerError, match="serves dataset 'beta'"):
            predict.check_answer(shared, alpha)
    with client.Client(url, features=("x",), expected=alpha) as strict:
        with pytest.raises(client.WrongServerError, match="not dataset 'alpha'"):
            strict.predict_rows([[1.0]])


def test_apply_via_refuses_another_datasets_server_and_takes_the_version_it_names(fake_server,
                                                                                  tmp_path: Path) -> None:
    from core.scoring import local

    s = _settings(tmp_path)  # kobe's: nothing of its own runs
    other = fake_server(_named(client.ServerIdentity("hmda", "hmda_model", "2")))
    with pytest.raises(client.WrongServerError, match="serves dataset 'hmda'") as err:
        local._choose_path(s, other)
    assert err.value.exit_code == 2
    own = fake_server(_named(client.ServerIdentity(s.dataset.name, s.model_name, "5")))
    assert local._choose_path(s, own) == (local.HTTP, own, "5")
    stock = fake_server({})  # names nothing: used as before, its version unknown (assumed by `score`)
    assert local._choose_path(s, stock) == (local.HTTP, stock, None)
    # apply's `checked`, whichever way the server was found (--via, or the managed one)
    assert local.server_checked(s, own) is True and local.server_checked(s, stock) is False
    with pytest.raises(client.WrongServerError, match="serves dataset 'hmda'"):
        local.server_checked(s, other)
