"""The store: the daemon that runs the cycle on a schedule and puts its prices on the shelf.

In: config/engine.yaml, plans, the outbox and the broker. Out: the price book with each SKU's
history and Omnibus reference, label updates through the outbox, the append-only event log, and
metrics; freeze windows and the kill switch are checked before and during every push.
"""
