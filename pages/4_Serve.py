"""Serve: run the champion behind MLflow's scoring server and score single rows over HTTP."""
import json

import streamlit as st

from core.charts import answer as answer_charts
from core.charts import explanation as explanation_charts
from core.data import preparation, profile
from core.errors import WorkbenchError
from core.serving import client, inference_log, predict, server
from ui import forms, mlflow_links, session_keys
from ui.dataset_picker import active_settings
from ui.ops import metric_ms, operations_view
from ui.served_version import stale_banner
from ui.text import md
from ui.views import view_of

st.set_page_config(page_title="Serve · Kobe Workbench", layout="wide")
base = active_settings()
status = server.status(base, with_champion=True)
# the version the form feeds, read once: the one the server serves, else the champion
model = predict.answering_model(base) if status.running or status.champion_version else None
settings = model.scoped(base) if model else base  # the dataset seen through its feature set
spec = settings.dataset
st.title(f"Serve: {md(spec.title)}")
st.caption(f"Serve the champion model over HTTP with MLflow's scoring server and ask it about one {md(spec.row_noun)} "
           "at a time; every request is logged for the Drift page.")

if model is None:
    st.info("No champion yet — train one on the Train page (or `python -m core train`), then come back to serve it.")
    st.stop()
if not preparation.is_prepared(settings):
    st.info("No prepared data yet — prepare it on the Data page first (the form's ranges come from the training data).")
    st.stop()


@st.cache_data(show_spinner=False)
def training_profile(train_path: str, mtime: float, features: tuple[str, ...], _settings) -> tuple[dict, dict]:
    # keyed by the file, its age and the inputs (`_settings` is the dataset they were read for)
    train = preparation.load_split(_settings, "train")
    return profile.training_ranges(train, features), profile.typical_row(train, _settings.dataset)


@st.cache_resource(show_spinner=False)
def http_client(url: str, features: tuple[str, ...], timeout_s: float) -> client.Client:
    # keyed by the features too: another dataset's model on the same address takes other columns
    return client.Client(url, timeout_s, features)


def start_server() -> None:
    with st.spinner("Starting the model server (usually 3–10 s)…"):
        try:
            server.start(settings)
        except WorkbenchError as err:
            st.session_state[session_keys.SERVE_LAST_ERROR] = str(err)


def stop_server() -> None:
    server.stop(settings)


ranges, typical = training_profile(str(settings.train_path), settings.train_path.stat().st_mtime, settings.features,
                                   settings)

# ---------------------------------------------------------------- server status
with st.container(border=True):
    c1, c2, c3, c4 = st.columns([1, 1, 1, 1.2])
    c1.metric("Server", "up" if status.running else "down")
    c2.metric("Version served", f"v{status.model_version}" if status.running else "—",
              help=f"Current champion: v{status.champion_version}" if status.champion_version
              else "No champion registered")
    started = status.startup_s is not None and f"Started in {status.startup_s:.1f} s (to its first answer to /ping)"
    c3.metric("Uptime", f"{status.uptime_s:,.0f} s" if status.running else "—", help=started or None)
    if status.running:
        c4.button("Stop server", on_click=stop_server, width="stretch")
    else:
        c4.button("Start server", type="primary", on_click=start_server, width="stretch")
    st.caption(f"Address: `{status.url}` (port {status.port}, this dataset's own) · log: `{status.log_path}`"
               + (f" · pid {status.pid} · {status.workers or 1} worker(s)" if status.running else "")
               + (f" · started in {status.startup_s:.1f} s" if status.running and status.startup_s is not None
                  else "")
               + (f" · serving {mlflow_links.version_link(settings, status.model_version)}, champion "
                  f"{mlflow_links.version_link(settings, status.champion_version)} in the MLflow UI"
                  if status.running and status.champion_version else ""))
    stale_banner(settings, status, key="serve_restart_on_champion")
    if status.stale_pid_removed:
        st.warning("The model server stopped unexpectedly (its PID file was stale and has been removed): "
                   "click **Start server** to restart it.")
    error = st.session_state.pop(session_keys.SERVE_LAST_ERROR, None)
    if error:
        st.error(md(error))

# ---------------------------------------------------------------- the form
left, right = st.columns([1, 1])
view = view_of(spec)
if view is not None and hasattr(view, "picker"):
    # the dataset's own picker (e.g. a court to click), setting some of the form's values
    picked = (st.session_state.get(session_keys.SERVE_PICKER) or {}).get("selection", {}).get("points", [])
    if picked and picked[0] != st.session_state.get(session_keys.SERVE_PICKED):  # a new click
        st.session_state[session_keys.SERVE_PICKED] = picked[0]
        for name, value in view.from_click(picked[0]).items():
            feature = spec.feature(name)
            st.session_state[forms.widget_key(feature)] = int(value) if feature.integer else value
    current = {f.name: st.session_state.get(forms.widget_key(f), typical[f.name]) for f in spec.features_spec}
    left.plotly_chart(view.picker(current), on_select="rerun", selection_mode="points",
                      key=session_keys.SERVE_PICKER, width="stretch",
                      config={"displayModeBar": False})  # a click picks: no zoom tools over its title
with left.form("row"):
    st.subheader(f"One {md(spec.row_noun)}")
    values = {f.name: forms.feature_input(f, typical[f.name], ranges) for f in spec.features_spec}
    allow_unseen = bool(spec.categorical_features) and st.checkbox(
        "Allow unseen categories", key=session_keys.SERVE_ALLOW_UNSEEN,
        help="A category typed in that training never saw is refused unless this is ticked; then the model "
             "scores it as an unknown category.")
    explain = st.checkbox("Explain the answer", value=True, key=session_keys.SERVE_EXPLAIN,
                          help="Ask the model server for each feature's contribution to this answer "
                               "(MLflow's params {\"explain\": true}): shown as a waterfall under the answer.")
    submitted = st.form_submit_button("Predict", type="primary")

# a binary model decides at a threshold; a multiclass one answers its most probable class, a regression a number
decides_at_threshold = model.kind.default_threshold is not None
threshold = left.slider(f"Class threshold on {md(spec.proba_label)}", 0.01, 0.99,
                        min(max(model.decision_threshold, 0.01), 0.99), 0.01,
                        # one slider per dataset and version: another's value is never carried over
                        key=f"{session_keys.SERVE_THRESHOLD}:{spec.name}:v{model.version}",
                        help=f"The {md(spec.row_noun)} is classed as {md(spec.positive_name)} when {md(spec.proba_label)} "
                             "reaches this threshold.") if decides_at_threshold else None

if submitted:
    try:
        pred = predict.predict_one(base, values, model, url=status.url, threshold=threshold,
                                   client=http_client(status.url, settings.features, settings.request_timeout_s),
                                   ranges=ranges,
                                   log_source="serve-page", allow_unseen=allow_unseen, explain=explain)
        st.session_state[session_keys.SERVE_LAST_PREDICTION] = pred.to_dict()
    except client.ServerNotRunningError:
        st.session_state.pop(session_keys.SERVE_LAST_PREDICTION, None)
        right.error("The model server is down (it stopped or was killed). Restart it to send the request.")
        right.button("Restart server", type="primary", on_click=start_server)
    except WorkbenchError as err:
        st.session_state.pop(session_keys.SERVE_LAST_PREDICTION, None)
        right.error(md(err))

# ---------------------------------------------------------------- the answer
last = st.session_state.get(session_keys.SERVE_LAST_PREDICTION)
if last is not None and last.get("task", "binary") != model.task:  # an answer of another dataset's model
    last = None
with right:
    st.subheader("Answer")
    if last is None:
        st.info(f"Fill in the {md(spec.row_noun)} and click **Predict**: one request is sent per click.")
    else:
        if model.task == "regression":  # the value and its interval
            low, high = last["interval"] or (None, None)
            unit = f" {spec.target.unit}" if spec.target.unit else ""
            m1, m2 = st.columns([1, 1.3])  # two wide numbers: the latency is said below
            m1.metric(f"Predicted {md(spec.target.column)}", f"{predict.number_text(last['prediction'])}{md(unit)}")
            m2.metric(f"{100 * last['interval_level']:.0f} % interval" if last["interval"] else "Interval",
                      f"{predict.number_text(low)} – {predict.number_text(high)}" if last["interval"] else "—",
                      help="The prediction plus and minus the halfwidth of the version's conformal interval: "
                           "at training, this share of held-out values fell inside it.")
            st.markdown(f"**{md(predict.answer_text(spec, last))}**")
            st.caption(f"Latency {last['latency_ms']:.1f} ms (round trip of the HTTP request, client side). "
                       "`predict --json` prints \"prediction\", \"interval\" ([low, high]) and \"interval_level\".")
        elif model.task == "multiclass":  # the class in words and a bar per class
            m1, m2 = st.columns([1.6, 1])  # a class name may be long: the latency is said below
            m1.metric(f"Predicted {md(spec.target.column)}", md(last["class_name"]))
            m2.metric("Its probability", f"{last['proba']:.1%}")
            st.markdown(f"**{md(predict.answer_text(spec, last))}**")
            st.plotly_chart(answer_charts.class_bars(last["probabilities"]), width="stretch",
                            config={"displayModeBar": False})
            st.caption(f"Latency {last['latency_ms']:.1f} ms (round trip of the HTTP request, client side). "
                       "`predict --json` prints the class as \"label\" and each class's probability in "
                       "\"probabilities\".")
        else:
            label, value, name = predict.answer_class(spec, last["proba"], threshold)  # what `predict` prints
            m1, m2, m3 = st.columns(3)
            m1.metric(md(spec.proba_label), f"{last['proba']:.1%}")
            m2.metric(f"Class at {threshold:.2f}", md(name.capitalize()))
            m3.metric("Latency", metric_ms(last["latency_ms"]), help="Round trip of the HTTP request, client side")
            shown = f'"{md(value)}"' if isinstance(value, str) else md(json.dumps(value))  # as JSON prints it
            st.caption(f"Class {md(name)}: {md(spec.target.column)} = {shown} in the data; `predict --json` prints "
                       f"\"class\": {shown}, \"class_name\": \"{md(name)}\" and the model's \"label\": {label} "
                       f"(1 = {md(spec.positive_name)}).")
        if last.get("server_ms") is not None:
            st.caption(f"Latency = server {last['server_ms']:.2f} ms (the model server's own time, from its "
                       f"`Server-Timing` header) + network round trip and client {last['network_ms']:.2f} ms")
        st.caption(f"Model v{last['model_version'] or '?'} at {last['url']} · logged as request "
                   f"#{last['log_id']} in the inference log")
        if last.get("stale"):
            st.warning(f"This answer came from v{last['model_version']}, not from the champion "
                       f"v{last['champion_version']}.")
        for warning in last["warnings"]:
            st.warning(md(warning))
        if last.get("explanation"):
            # a multiclass answer is explained for its predicted class; a binary one on the positive class
            explained_class = last.get("class_name") if model.task == "multiclass" else None
            st.plotly_chart(explanation_charts.waterfall(last["explanation"], spec, last["inputs"],
                                                         class_name=explained_class),
                            width="stretch", config={"displayModeBar": False})
            st.caption(md(explanation_charts.caption(last["explanation"], spec, explained_class)))

with st.expander("The exact request as `curl` and on the command line"):
    sent = forms.as_sent(values)
    st.code(predict.curl_example(status.url, sent, settings.features), language="bash")
    st.code(predict.cli_example(sent, settings.features, dataset=spec.name, allow_unseen=allow_unseen,
                                threshold=None if threshold is None or threshold == model.decision_threshold
                                else threshold),
            language="bash")

# ---------------------------------------------------------------- the inference log
st.subheader("Inference log")
n_logged = inference_log.count(settings)
st.caption(f"{inference_log.logged_text(settings)} in {settings.inference_log_path.name}, from every client of the model server; "
           "the Drift page monitors them.")
if n_logged:
    recent = inference_log.read_last(settings, 10).iloc[::-1]
    st.dataframe(recent, hide_index=True, width="stretch",  # the answer first, in view; the inputs after it
                 column_order=[c for c in (*inference_log.answer_columns(spec), *settings.features) if c in recent],
                 column_config={"timestamp": st.column_config.DatetimeColumn("time (UTC)", format="YYYY-MM-DD HH:mm:ss"),
                                spec.proba_column: st.column_config.NumberColumn(spec.proba_label, format="%.3f"),
                                "model_version": st.column_config.TextColumn("version"),
                                "latency_ms": st.column_config.NumberColumn("latency (ms)", format="%.1f")})

# ---------------------------------------------------------------- operations
operations_view(settings)
