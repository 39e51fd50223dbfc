"""Steering: what to expect and what to do. ``forecast`` and ``outlook``, the North Star
``plan``, ``scorecard``, ``coaching``, ``experiments`` and ``enps``. Functions return DataFrames
(and sentences); charts are drawn in :mod:`analysis.reports`. Imports the layers below only.
"""
