"""Streamlit session-state keys, in one place (plain strings; core never imports streamlit)."""

PREP_SUMMARY = "prep_summary"

# Serve page
SERVE_LAST_PREDICTION = "serve_last_prediction"
SERVE_LAST_ERROR = "serve_last_error"
SERVE_THRESHOLD = "serve_threshold"
SERVE_LAT = "serve_lat"
SERVE_LON = "serve_lon"
SERVE_DISTANCE = "serve_shot_distance"
SERVE_COURT = "serve_court"
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
