"""Presentation: charts and tables (``charts``, ``figures``,
``plan_view``), review sections (``review``, ``steering_review``), rendering (``render``) and
the notebook explorer (``explore``). The top layer: it may import any other. Text formats
(:mod:`analysis.format`) sit beside ``errors`` and ``paths`` at the top of the package: the
sentences of every layer use them.
"""
