"""The pricing managers' rules and the prices they allow.

In: config/rules.yaml (``load_rules``), products with costs and today's prices. Out: integer-cent
candidate prices per SKU with the rules that bind or were relaxed, and the links (families, size
ladders, brand tiers) between SKUs that the optimizer must respect.
"""
