"""The dashboard (Streamlit): Overview, Customer, Demand spikes, History, Pipeline health.

`app.py` is the Streamlit script; `views/` holds the pages. They render what the store layer
reads (`shopstream.store`: point lookups on the streaming job's documents, PostgreSQL for the
customers), the warehouse's marts (History, `warehouse.serving`) and `health` (Kafka, the
lake, the API's metrics).
"""

from pathlib import Path

APP_PATH = Path(__file__).with_name("app.py")
