"""Page-only helpers (Streamlit): session-state keys, progress widgets, input forms, views."""
