"""Modeling: training candidates (`candidates`, `training`, `diagnostics`, `lock`) per task kind
(`tasks`), a regression's conformal intervals (`intervals`), logged models (`model_io`,
`pyfunc_model`), the registry and its aliases (`registry`), and reading runs back for comparison
(`comparison`), with the metrics (`metrics`).
"""
