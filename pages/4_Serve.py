"""Serve: run the champion behind `mlflow models serve` and score single shots over HTTP."""
import numpy as np
import streamlit as st

from core import charts, data, inference_log, inputs, serve_charts, serving, session_keys, tracking
from core.config import Settings
from core.errors import WorkbenchError

st.set_page_config(page_title="Serve · Kobe Workbench", layout="wide")
settings = Settings.from_env()
st.title("Serve")
st.caption("Serve the champion model over HTTP with `mlflow models serve` and ask it about one shot at a time; "
           "every request is logged for the Drift page.")

status = serving.status(settings)
champion = tracking.champion(settings)
if champion is None and not status.running:
    st.info("No champion yet — train one on the Train page (or `python -m core train`), then come back to serve it.")
    st.stop()
if not data.is_prepared(settings):
    st.info("No prepared data yet — prepare it on the Data page first (the form's ranges come from the training data).")
    st.stop()


@st.cache_data(show_spinner=False)
def training_profile(train_path: str, mtime: float) -> tuple[dict, dict]:
    train = data.load_split(settings, "train")
    return inputs.training_ranges(train, settings.features), inputs.typical_shot(train, settings.features)


@st.cache_resource(show_spinner=False)
def http_client(url: str) -> serving.Client:
    return serving.Client(url, settings.request_timeout_s, settings.features)


def start_server() -> None:
    with st.spinner("Starting the model server (usually 5–20 s)…"):
        try:
            serving.start(settings)
        except WorkbenchError as err:
            st.session_state[session_keys.SERVE_LAST_ERROR] = str(err)


def stop_server() -> None:
    serving.stop(settings)


ranges, typical = training_profile(str(settings.train_path), settings.train_path.stat().st_mtime)

# ---------------------------------------------------------------- server status
with st.container(border=True):
    c1, c2, c3, c4 = st.columns([1, 1, 1, 1.2])
    c1.metric("Server", "up" if status.running else "down")
    c2.metric("Version served", f"v{status.model_version}" if status.running else "—",
              help=f"Current champion: v{champion.version}" if champion else "No champion registered")
    c3.metric("Uptime", f"{status.uptime_s:,.0f} s" if status.running else "—")
    if status.running:
        c4.button("Stop server", on_click=stop_server, width="stretch")
    else:
        c4.button("Start server", type="primary", on_click=start_server, width="stretch")
    st.caption(f"Address: `{status.url}` · log: `{status.log_path}`"
               + (f" · pid {status.pid} · {status.workers or 1} worker(s)" if status.running else ""))
    if status.running and champion and status.model_version != champion.version:
        st.warning(f"The server still serves v{status.model_version}, but the champion is now v{champion.version}: "
                   f"stop and start the server to serve the new champion.")
    if status.stale_pid_removed:
        st.warning("The model server stopped unexpectedly (its PID file was stale and has been removed): "
                   "click **Start server** to restart it.")
    error = st.session_state.pop(session_keys.SERVE_LAST_ERROR, None)
    if error:
        st.error(error)

# ---------------------------------------------------------------- the shot form
left, right = st.columns([1, 1])
keys = session_keys
st.session_state.setdefault(keys.SERVE_LAT, typical["lat"])
st.session_state.setdefault(keys.SERVE_LON, typical["lon"])
st.session_state.setdefault(keys.SERVE_DISTANCE, int(typical["shot_distance"]))
picked = (st.session_state.get(keys.SERVE_COURT) or {}).get("selection", {}).get("points", [])
if picked and picked[0] != st.session_state.get(keys.SERVE_PICKED):  # a new click on the court
    st.session_state[keys.SERVE_PICKED] = picked[0]
    lat_new, lon_new = charts.lat_lon(float(picked[0]["x"]), float(picked[0]["y"]))
    st.session_state[keys.SERVE_LAT] = round(float(lat_new), 4)
    st.session_state[keys.SERVE_LON] = round(float(lon_new), 4)
    st.session_state[keys.SERVE_DISTANCE] = int(round(float(np.hypot(picked[0]["x"], picked[0]["y"]))))
left.plotly_chart(serve_charts.court_picker(st.session_state[keys.SERVE_LAT], st.session_state[keys.SERVE_LON]),
                  on_select="rerun", selection_mode="points", key=keys.SERVE_COURT, width="stretch")
with left.form("shot"):
    st.subheader("One shot")
    r = inputs.RULES_BY_NAME

    def hint(name: str) -> str:
        low, high = ranges[name]
        return f"{r[name].label}. Training range: {low:g} to {high:g}{(' ' + r[name].unit) if r[name].unit else ''}."

    lat = st.number_input("Latitude (°)", min_value=r["lat"].minimum, max_value=r["lat"].maximum,
                          key=keys.SERVE_LAT, step=0.001, format="%.4f", help=hint("lat"))
    lon = st.number_input("Longitude (°)", min_value=r["lon"].minimum, max_value=r["lon"].maximum,
                          key=keys.SERVE_LON, step=0.001, format="%.4f", help=hint("lon"))
    shot_distance = st.number_input("Shot distance (ft)", min_value=int(r["shot_distance"].minimum),
                                    max_value=int(r["shot_distance"].maximum), key=keys.SERVE_DISTANCE,
                                    step=1, help=hint("shot_distance") + " Set from the court when you click it.")
    a, b = st.columns(2)
    period = a.selectbox("Period", list(range(1, 8)), index=int(typical["period"]) - 1,
                         format_func=lambda p: f"{p}" if p <= 4 else f"{p} (overtime {p - 4})", help=hint("period"))
    minutes_remaining = b.slider("Minutes remaining in the period", 0, 11, int(typical["minutes_remaining"]),
                                 help=hint("minutes_remaining"))
    playoffs = st.radio("Game", [0, 1], index=int(typical["playoffs"]), horizontal=True,
                        format_func=lambda v: "Playoffs" if v else "Regular season")
    submitted = st.form_submit_button("Predict", type="primary")

threshold = left.slider("Class threshold on P(made)", 0.05, 0.95, settings.threshold, 0.01,
                        key=session_keys.SERVE_THRESHOLD,
                        help="The shot is classed as made when P(made) reaches this threshold.")
shot = {"lat": lat, "lon": lon, "minutes_remaining": minutes_remaining, "period": period,
        "playoffs": playoffs, "shot_distance": shot_distance}

if submitted:
    try:
        pred = serving.predict_one(settings, shot, url=status.url, threshold=threshold,
                                   client=http_client(status.url), ranges=ranges, log_source="serve-page")
        st.session_state[session_keys.SERVE_LAST_PREDICTION] = pred.to_dict()
    except serving.ServerNotRunningError:
        st.session_state.pop(session_keys.SERVE_LAST_PREDICTION, None)
        right.error("The model server is down (it stopped or was killed). Restart it to send the request.")
        right.button("Restart server", type="primary", on_click=start_server)
    except WorkbenchError as err:
        st.session_state.pop(session_keys.SERVE_LAST_PREDICTION, None)
        right.error(str(err))

# ---------------------------------------------------------------- the answer
last = st.session_state.get(session_keys.SERVE_LAST_PREDICTION)
with right:
    st.subheader("Answer")
    if last is None:
        st.info("Fill in the shot and click **Predict**: one request is sent per click.")
    else:
        made = last["proba_made"] >= threshold
        m1, m2, m3 = st.columns(3)
        m1.metric("P(made)", f"{last['proba_made']:.1%}")
        m2.metric(f"Class at {threshold:.2f}", "Made" if made else "Missed")
        m3.metric("Latency", f"{last['latency_ms']:.1f} ms", help="Round trip of the HTTP request, client side")
        st.caption(f"Model v{last['model_version'] or '?'} at {last['url']} · logged as request "
                   f"#{last['log_id']} in the inference log")
        for warning in last["warnings"]:
            st.warning(warning)

with st.expander("The exact request as `curl`"):
    st.code(serving.curl_example(status.url, {k: float(v) for k, v in shot.items()}, settings.features),
            language="bash")

# ---------------------------------------------------------------- the inference log
st.subheader("Inference log")
n_logged = inference_log.count(settings)
st.caption(f"{n_logged:,} request(s) logged in {settings.inference_log_path.name}; the Drift page monitors them.")
if n_logged:
    recent = inference_log.read_last(settings, 10).iloc[::-1]
    st.dataframe(recent.drop(columns=["id"]), hide_index=True, width="stretch",
                 column_config={"proba_made": st.column_config.NumberColumn("P(made)", format="%.3f"),
                                "latency_ms": st.column_config.NumberColumn("latency (ms)", format="%.1f")})
