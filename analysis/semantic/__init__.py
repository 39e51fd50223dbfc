"""The semantic layer: metric definitions as data (``catalog.yml``, ``catalog``) and the engine
that computes them as ibis expressions (``engine``). Imports only the data layer.
"""
