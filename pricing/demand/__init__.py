"""The demand model: how many units each SKU sells at each price.

In: a store's sales history and products (pricing.core.data). Out: a fitted scikit-learn estimator
(``DemandModel``) that scores all SKUs x all candidate prices in one call, saved with its model card.
"""
