"""Analytics: the funnel (``funnel``), the pipeline over time (``pipeline``) and loss analysis
(``losses``). Functions return DataFrames; charts are drawn in :mod:`analysis.reports`.
Imports the data and semantic layers only.
"""
