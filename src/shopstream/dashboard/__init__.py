"""The live dashboard (Streamlit): Overview, Customer and Pipeline health pages.

`app.py` is the Streamlit script; the pages render what `queries`, `customers` and `health`
read, by point lookups, from the streaming job's documents and PostgreSQL.
"""

from pathlib import Path

APP_PATH = Path(__file__).with_name("app.py")
