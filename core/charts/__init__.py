"""Plotly figures rendered from data and result objects only (no computation of their own):
data (`data`), evaluation curves (`evaluation`), scoring (`scoring`), the model server's traffic
(`operations`) and drift (`drift`), in the dataset's words (`words`).
"""
