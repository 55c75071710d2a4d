"""Streamlit session-state keys, in one place (the Serve form's inputs: `ui.forms.widget_key`)."""

PREP_SUMMARY = "prep_summary"

# Serve page
SERVE_LAST_PREDICTION = "serve_last_prediction"
SERVE_LAST_ERROR = "serve_last_error"
SERVE_THRESHOLD = "serve_threshold"
SERVE_PICKER = "serve_picker"
SERVE_PICKED = "serve_picked"
SERVE_ALLOW_UNSEEN = "serve_allow_unseen"
SERVE_EXPLAIN = "serve_explain"  # ask the server for the answer's explanation (issue 31)

# Production page
PRODUCTION_RESULT = "production_result"
PRODUCTION_THRESHOLD = "production_threshold"
PRODUCTION_SOURCE = "production_source"  # the production split or an uploaded file
PRODUCTION_UPLOAD_RESULT = "production_upload_result"  # the last uploaded batch scored (its ScoreResult dict)

# Drift page
DRIFT_REPORT = "drift_report"
DRIFT_CHECKED_ID = "drift_checked_id"
DRIFT_REPORTS = "drift_reports"  # this session's checks by batch digest and champion version
DRIFT_REUSED = "drift_reused"  # why the shown check is an earlier one (a re-upload of the same batch)
RETRAIN_RESULT = "retrain_result"

# Train page
TRAIN_REQUEST = "train_request"
TRAIN_RESULT = "train_result"
TRAIN_ERROR = "train_error"
TRAIN_USED = "train_used"  # the last run's form values, put back into the form after it

# Compare page
COMPARE_SELECTION = "compare_selection"
COMPARE_THRESHOLD = "compare_threshold"

# Dataset picker (sidebar, every page): the session's dataset, and its select box
DATASET = "dataset"
DATASET_CHOICE = "dataset_choice"
# every key that survives a switch of dataset (the rest is the old dataset's state and is dropped)
KEEP_ON_DATASET_SWITCH = (DATASET, DATASET_CHOICE)

# Data page: adding a dataset
ADD_INFERENCE = "add_inference"
ADD_FILE_ID = "add_file_id"
ADD_EDITOR = "add_editor"
ADD_TASK = "add_task"  # the task select box of the proposed definition
ADD_SAVED = "add_saved"
ADD_ROUND = "add_round"  # how many datasets this session added: the uploader's key changes after each
