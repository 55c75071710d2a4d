"""Monitoring: the training reference (`reference`), drift statistics (`statistics`), model
health without labels (`health` for binary models; `task_health` and its `estimators`, CBPE and
DLE, for multiclass and regression ones, from the model's `outputs`), one check (`check`) and its
result (`drift_report`, rendered as HTML by `html`), the verdicts (`policy`, per task kind), the
history (`history`) and retraining (`retraining`).
"""
