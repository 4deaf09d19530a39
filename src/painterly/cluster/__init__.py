"""Running many stylisations across a Ray cluster (``painterly batch --ray``).

``plan`` names each output after its inputs' content and the options and keeps the
manifest of what is done; ``worker`` is what a Ray worker runs for one output;
``ray_batch`` is the driver's side (connecting, scheduling, retries). Ray itself is
imported only by ``ray_batch`` and inside the worker's function, so painterly without
the ``ray`` extra never needs it.
"""
