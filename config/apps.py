"""App configuration that installs the project's admin site in place of Django's default."""

from django.contrib.admin.apps import AdminConfig


class ChatAdminConfig(AdminConfig):
    """django.contrib.admin, with `admin.site` being config.admin.ChatAdminSite (throttled
    login). Listed in INSTALLED_APPS instead of "django.contrib.admin"."""

    default_site = "config.admin.ChatAdminSite"
