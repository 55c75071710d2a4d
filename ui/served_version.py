"""The served version in step with the champion: a warning with a one-click restart, for every
page that shows the model server (Home, Serve, Production)."""
from __future__ import annotations

import streamlit as st

from core.config import Settings
from core.errors import WorkbenchError
from core.serving import server
from ui.text import md

RESTART_ERROR = "served_version_restart_error"  # session key: why the last restart failed


def restart_on_champion(settings: Settings) -> None:
    """Button callback: the managed server stopped and started again on the current champion."""
    with st.spinner("Restarting the model server on the champion…"):
        try:
            server.restart(settings)
        except WorkbenchError as err:
            st.session_state[RESTART_ERROR] = str(err)


def stale_banner(settings: Settings, status: server.ServerStatus, key: str) -> None:
    """When the running server serves another version than the champion: 'serving vX, champion
    vY' and a button that restarts it on the champion (`key`: unique per page). `status` is
    `server.status(settings, with_champion=True)`."""
    error = st.session_state.pop(RESTART_ERROR, None)
    if error:
        st.error(f"The model server could not be restarted: {md(error)}")
    if not status.stale:
        return
    left, right = st.columns([4, 1.2])
    left.warning(f"**The model server is stale: {status.in_step_text}.** Requests sent to it (the Serve page, "
                 f"production scoring over HTTP, `predict`, `apply --via`) are answered by v{status.model_version}, "
                 "not by the champion.",
                 icon=":material/sync_problem:")
    right.button(f"Restart on v{status.champion_version}", type="primary", key=key, width="stretch",
                 on_click=restart_on_champion, args=(settings,),
                 help=f"Stop the server and start it again on port {status.port} with the champion, "
                      f"v{status.champion_version}.")
