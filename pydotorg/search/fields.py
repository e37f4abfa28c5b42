from django.contrib.postgres.search import SearchVectorExact
from django.db import models


class TSVectorField(models.Field):
    """A ``tsvector`` column on PostgreSQL (unused text elsewhere).

    Like ``SearchVectorField``, without requiring ``django.contrib.postgres`` in
    INSTALLED_APPS, so the site also runs on SQLite, where search matches plain text.
    """

    description = "PostgreSQL tsvector"

    def db_type(self, connection) -> str:
        return "tsvector" if connection.vendor == "postgresql" else "text"


TSVectorField.register_lookup(SearchVectorExact)
