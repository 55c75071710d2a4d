"""Serving: the model server process (`server`), its HTTP client (`client`), single requests
(`predict`) and the inference log (`inference_log`).
"""
