"""The "Task queues" dashboard in the Django admin: queues, workers, jobs, actions and a stats endpoint.

Its URLs hang off the ``TaskQueue`` model admin (``tasks_app/admin.py``), so the dashboard
appears in the admin index and is gated by ``tasks_app.view_dashboard`` / ``tasks_app.manage_jobs``.
"""
