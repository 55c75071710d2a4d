"""Kobe Workbench core library: everything the pages do, without Streamlit."""
