"""xscreen dashboard: the script Streamlit runs on every interaction (`streamlit run app.py`, or dashboard.py).
Its code is pages/_navigation.py: sign-in, then the pages the user's role may open."""

from pages._navigation import run

run()
