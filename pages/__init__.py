"""The dashboard's pages (Streamlit scripts that app.py runs through st.navigation) and their shared helpers."""
