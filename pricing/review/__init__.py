"""The pricing manager's review page: a small web app served by the engine.

In: the plans folder, the store data, the engine database and the broker. Out: pages and a JSON
API; decisions written to the plan files and the event log, approved prices pushed to the labels.

The latest plan as a sortable table, approve or reject the changes held for approval (pushed to
the labels in the background, unless the kill switch or a freeze window blocks pushes), each
SKU's price history with its 30-day reference and its rendered labels, and label sync per gateway.
Read-only unless a secret is configured (``ESL_REVIEW_TOKEN``); bound to 127.0.0.1 by default.

``create_app(settings)`` builds the FastAPI app; ``ReviewServer`` runs it in a thread;
``esl-pricing serve`` (pricing/cli/serve.py) runs it from the command line.
"""
