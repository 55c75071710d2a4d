"""Monitoring: the training reference (`reference`), drift statistics (`statistics`), model
health without labels (`health`), one check (`check`) and its result (`drift_report`, rendered
as HTML by `html`), the verdicts (`policy`), the history (`history`) and retraining (`retraining`).
"""
