from django.urls import path

from . import views

app_name = "pages"
urlpatterns = [
    # Last in the site's URLconf: any path the site's own sections did not claim may be a page.
    path("<path:path>", views.page, name="page"),
]
