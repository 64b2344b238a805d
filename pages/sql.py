"""Analyst SQL: the schema, a read-only console (run by the store owner in a sandbox), results, chart, downloads."""

from __future__ import annotations

import io

import pandas as pd
import streamlit as st

from analytics import charts
from pages import _common as common

s = common.guard("sql")
cfg, store = common.settings(), common.store(s)
st.title("Analyst SQL")
st.caption("Read-only: the query runs over a snapshot with writes and file access disabled.")

with st.expander("Schema", expanded=False):
    schema = common.attempt(lambda: store.query("schema"))
    if schema is not None:
        for table, cols in schema.groupby("table_name"):
            st.markdown(f"**{table}**: " + ", ".join(f"`{c}` {t}" for c, t in zip(cols["column_name"],
                                                                                  cols["data_type"], strict=True)))

text = st.text_area("SQL", "SELECT scanner_id, verdict, count(*) AS n FROM champion_verdicts GROUP BY ALL ORDER BY n DESC",
                    height=120, key="sql_text")
if st.button("Run", key="sql_run", type="primary"):
    result = common.attempt(lambda: store.sql(text, limit=cfg.store.sql_row_limit))
    st.session_state["sql_result"] = None if result is None else pd.DataFrame(result.rows, columns=result.columns)
    st.session_state["sql_truncated"] = bool(result and result.truncated)

df = st.session_state.get("sql_result")
if df is not None:
    st.caption(f"{len(df):,} rows" + (f" (first {cfg.store.sql_row_limit:,} shown)" if st.session_state.get(
        "sql_truncated") else ""))
    st.dataframe(df, hide_index=True, key="sql_table")
    d1, d2 = st.columns(2)
    d1.download_button("Download CSV", df.to_csv(index=False), "query.csv", "text/csv", key="sql_csv")
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    d2.download_button("Download Parquet", buf.getvalue(), "query.parquet", key="sql_parquet")
    if len(df.columns):
        st.subheader("Chart")
        cols = [str(c) for c in df.columns]
        x0, y0, colour0 = charts.default_encoding(df)
        c1, c2, c3, c4 = st.columns(4)
        kind = c1.selectbox("Kind", charts.CHART_KINDS, key="sql_kind")
        x = c2.selectbox("x", cols, index=cols.index(x0), key="sql_x")
        y = c3.selectbox("y", [None, *cols], index=0 if y0 is None else 1 + cols.index(y0), key="sql_y")
        colour = c4.selectbox("colour", [None, *cols], index=0 if colour0 is None else 1 + cols.index(colour0),
                              key="sql_colour")
        fig = common.attempt(lambda: charts.sql_chart(df, kind, x, y, colour))
        if fig is not None:
            st.plotly_chart(fig, key="sql_chart")
