"""The older SAQ document's search tasks module: here the search app owns its tasks (``pydotorg/search/tasks.py``)."""

from . import moved

raise moved(__name__, "pydotorg.search.tasks", "rebuild_search_index, index_content")
