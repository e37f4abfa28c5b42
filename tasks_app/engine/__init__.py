"""The engine: tasks_app's SAQ subclasses, and the only place that touches SAQ's private names."""
