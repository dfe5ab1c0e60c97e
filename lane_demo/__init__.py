"""The simulated lane, end to end: ``edge-agent demo`` and ``edge-agent sim``.

``demo`` runs everything in one process; ``sim`` serves the hardware for ``edge-agent run`` in another.

Its own package, on neither side of the wire: it wires the lane agent (``edge_agent``) to the
simulated hardware (``hw_sim``), which know nothing of each other. Shipped with ``hw_sim`` and the
broker it embeds in the ``lane-sim`` distribution (``sim/pyproject.toml``), never in the lane's wheel;
its commands join the ``edge-agent`` CLI through the ``edge_agent.commands`` entry point.
"""
