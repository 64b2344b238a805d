"""The dashboard as `xscreen serve` starts it (`streamlit run dashboard.py`): app.py with the session-cookie routes.
Its code is pages/_dashboard.py."""

from pathlib import Path

from pages._dashboard import build

app = build(Path(__file__).with_name("app.py"))
