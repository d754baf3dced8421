from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve

urlpatterns: list = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("search.api_urls")),
    path("", include("search.urls")),
]

if settings.SERVE_MEDIA:
    # The demo serves product photos itself; a production shop serves MEDIA_ROOT from its front web
    # server and sets SERVE_MEDIA=0 (docs/deployment.md).
    urlpatterns += [
        re_path(r"^media/(?P<path>.*)$", serve, {"document_root": settings.MEDIA_ROOT}),
    ]
