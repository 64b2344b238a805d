"""Pure statistics, charts and what-if of xscreen, shared by the app's pages and notebooks.

Imports neither the store, DuckDB, torch, ray nor streamlit: a notebook can `import analytics` alone.
"""
