"""Modeling: training candidates (`candidates`, `training`, `diagnostics`, `lock`), logged models
(`model_io`, `pyfunc_model`), the registry and its aliases (`registry`), and reading runs back
for comparison (`comparison`), with the metrics (`metrics`).
"""
