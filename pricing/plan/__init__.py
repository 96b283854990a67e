"""The price plan: one pricing cycle from data to reviewed prices.

In: products, a demand model, rules (and labels for the fit check). Out: a PricePlan (old -> new,
expected units and profit, the binding rule and an explanation per price, approval status) written
as JSON + CSV, and the decisions on changes held for approval; also the model's evaluation.
"""
