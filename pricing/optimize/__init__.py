"""The optimizer: the best allowed price for every SKU.

In: candidates with a score each (expected profit or revenue from the demand model), links and a
change budget. Out: one chosen candidate per SKU with the objective and a proven bound; unlinked
SKUs by a vectorised argmax, linked groups exactly, the monolithic CP-SAT model as a reference.
"""
