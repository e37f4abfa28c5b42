"""The older SAQ document's feed tasks module: here the blogs app owns its tasks (``pydotorg/blogs/tasks.py``)."""

from . import moved

raise moved(__name__, "pydotorg.blogs.tasks", "refresh_all_feeds, refresh_single_feed")
