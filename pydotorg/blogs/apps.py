from django.apps import AppConfig


class BlogsConfig(AppConfig):
    name = "pydotorg.blogs"
    label = "blogs"
    default_auto_field = "django.db.models.BigAutoField"
