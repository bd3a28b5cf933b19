"""The grounded brain's dialogue, one job per module.

The brain itself (:class:`receptionist.engines.local.grounded.GroundedBrain`) is built in
layers, each a class over the one below, so that a layer only uses what is beneath it:
``core`` (the call's files, state and field plans; replies put out) -> ``orders`` (order lines,
prices, "which one?" choices) -> ``readback`` (the read-back to confirm) -> ``slots`` (details
from a turn, one parser per field role) -> ``intent`` (the call type) -> ``answers`` (questions
answered from the files) -> ``grounded`` (the turn-by-turn policy).

Beside them, plain functions: ``speaking`` (dates, times, numbers said aloud), ``patterns``
(cue phrases), ``digits``, ``spelling``, ``corrections``, ``echo``, ``fuzzy`` and ``policy``
(the moments a reply must not push towards an order).
"""
