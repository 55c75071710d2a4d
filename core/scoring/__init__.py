"""Scoring production batches: in-process or over HTTP (`local`), on Spark (`spark`), and the
adherence verdict (`adherence`).
"""
