"""Storage and statistics of xscreen: the DuckDB store and its owner, queries, drift/accuracy statistics, charts.

Imports neither torch, ray nor streamlit: a notebook can `import analytics` alone.
"""
