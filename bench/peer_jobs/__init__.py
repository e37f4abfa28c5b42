"""The jobs of ``bench/peers.py``: the same work for every system it compares.

- ``probe``: what every job records, the same way in every system (a completion count per
  process; start and end times for the few jobs the benchmark marks);
- ``asyncio_jobs``: the jobs as ``async def f(ctx, mark)``, for runworker and the bare ``saq`` worker;
- ``threaded_jobs``: the same jobs as plain functions, for huey's and dramatiq's worker threads
  (and rq's enqueue);
- ``saq_worker``, ``huey_app``, ``dramatiq_app``: each peer's own app and worker settings.
"""
