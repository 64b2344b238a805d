"""The store: the one owner of the DuckDB file and everything that talks to it (schema, operations by domain,
writer, spool, owner server and client). Imports neither torch, ray nor streamlit."""
