"""Other simulators that run the same :class:`~reservoir.network.Network` (cross-checks, benchmarks).

Backends are optional: ``import reservoir`` never imports them, and each imports its simulator
lazily, so a backend's dependency (e.g. ``brian2``) is only needed when that backend is used.

``reservoir.backends.brian2``  the network in Brian2 2.9 with the engine's exact step order.
"""
