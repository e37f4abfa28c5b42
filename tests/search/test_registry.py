"""Each content app declares its own search document in its search.py; search finds them at start-up."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from pydotorg.events.models import Event
from pydotorg.search import documents
from pydotorg.search.backends.meilisearch import index_settings


def test_every_content_app_declares_its_type_in_its_own_search_module():
    declared = {name: type(spec).__module__ for name, spec in documents.TYPES.items()}
    assert declared == {
        "page": "pydotorg.pages.search",
        "blog": "pydotorg.blogs.search",
        "job": "pydotorg.jobs.search",
        "event": "pydotorg.events.search",
    }  # in the order of INSTALLED_APPS


def test_a_second_declaration_of_a_name_or_a_model_is_refused(monkeypatch):
    monkeypatch.setattr(documents, "TYPES", dict(documents.TYPES))

    class Again(documents.DocumentType):
        name, label, model = "talk", "Talk", Event

    with pytest.raises(ImproperlyConfigured, match=r"Again declares 'talk' for events.Event.*one search document"):
        documents.register(Again)

    class Nameless(documents.DocumentType):
        label, model = "Talk", Event

    with pytest.raises(ImproperlyConfigured, match="Nameless has no 'name'"):
        documents.register(Nameless)

    class Shouting(documents.DocumentType):
        name, label, model = "Talks!", "Talk", Event

    with pytest.raises(ImproperlyConfigured, match="'Talks!' must be 1 to 20 lowercase"):
        documents.register(Shouting)


def test_meilisearch_settings_come_from_the_declarations():
    settings = index_settings()
    searchable = settings.searchable_attributes
    assert searchable[:4] == ["title", "description", "keywords", "content"]
    assert {"feed", "company", "location", "country", "category", "job_types", "venue"} == set(searchable[4:])
    assert {"feed_id", "country", "telecommuting"} <= set(settings.filterable_attributes)
    assert {"published", "starts", "expires"} <= set(settings.sortable_attributes)


@pytest.mark.parametrize(
    ("related", "message"),
    [
        ({"path": "categorie"}, r"jobs.Job has no field 'categorie' \(path 'categorie'\)"),
        ({"path": "company_name"}, r"'company_name' of jobs.Job is not a relation"),
        ({"path": "job_types"}, r"path 'job_types' leads to jobs.JobType, not jobs.JobCategory"),
        ({"path": "category", "fields": ("title",)}, r"jobs.JobCategory has no field 'title' to show"),
    ],
)
def test_a_related_declaration_that_leads_nowhere_is_refused(monkeypatch, related, message):
    from pydotorg.jobs.models import Job, JobCategory

    monkeypatch.setattr(documents, "TYPES", {})

    class Broken(documents.DocumentType):
        name, label, model = "job", "Job", Job

    Broken.related = {JobCategory: documents.Related(**related)}
    with pytest.raises(ImproperlyConfigured, match=message):
        documents.register(Broken)
