"""The project's URLs plus product photos, for the browser tests (tests run with DEBUG off)."""

from django.conf import settings
from django.urls import re_path
from django.views.static import serve

from config.urls import urlpatterns as project_urlpatterns


def media(request, path):
    return serve(request, path, document_root=settings.MEDIA_ROOT)  # the test's MEDIA_ROOT, read per request


urlpatterns = [*project_urlpatterns, re_path(r"^media/(?P<path>.*)$", media)]
