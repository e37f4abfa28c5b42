"""The site's URLs. Each section's first part is reserved for it (pydotorg/pages/paths.py);
everything else may be a Page, so the pages catch-all comes last."""

from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("admin/", admin.site.urls),
    path("", include("pydotorg.search.urls")),  # search/ and api/search/
    path("blogs/", include("pydotorg.blogs.urls")),
    path("jobs/", include("pydotorg.jobs.urls")),
    path("events/", include("pydotorg.events.urls")),
    path("", include("pydotorg.pages.urls")),
]

handler400 = "pydotorg.views.bad_request"
