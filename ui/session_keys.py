"""Streamlit session-state keys, in one place (the Serve form's inputs: `ui.forms.widget_key`)."""

PREP_SUMMARY = "prep_summary"

# Serve page
SERVE_LAST_PREDICTION = "serve_last_prediction"
SERVE_LAST_ERROR = "serve_last_error"
SERVE_THRESHOLD = "serve_threshold"
SERVE_PICKER = "serve_picker"
SERVE_PICKED = "serve_picked"

# Production page
PRODUCTION_RESULT = "production_result"
PRODUCTION_THRESHOLD = "production_threshold"

# Drift page
DRIFT_REPORT = "drift_report"
DRIFT_CHECKED_ID = "drift_checked_id"
RETRAIN_RESULT = "retrain_result"

# Train page
TRAIN_REQUEST = "train_request"
TRAIN_RESULT = "train_result"
TRAIN_ERROR = "train_error"

# Compare page
COMPARE_SELECTION = "compare_selection"
COMPARE_THRESHOLD = "compare_threshold"
