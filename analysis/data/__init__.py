"""The data layer: the canonical model (``schema``), ``config``, reading exports (``loading``,
``mapping`` and its presets, ``values``, ``locale``), data-quality checks (``validation``),
periods (``periods``), the deal timeline (``timeline``) and the sample generator (``sample``).

Nothing here imports a higher layer (semantic, analytics, steering, reports).
"""
