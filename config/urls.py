from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path, re_path, reverse
from django.views.defaults import page_not_found
from django.views.defaults import server_error as django_server_error
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


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 404 page, except under /api/: an API client gets JSON it can parse (in DRF's shape)
    rather than an HTML page. Django calls this with DEBUG off; with DEBUG on it shows its own page."""
    if request.path_info.startswith("/api/"):
        docs = reverse("search_api:docs")
        return JsonResponse(
            {"detail": f"No API endpoint at {request.path}. The endpoints are listed at {docs}."}, status=404
        )
    return page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's 500 page, except under /api/: JSON, with nothing about the failure in it (the log
    has the traceback)."""
    if request.path_info.startswith("/api/"):
        return JsonResponse(
            {
                "detail": "The server failed to answer this request; it has been logged.",
                "code": "server_error",
            },
            status=500,
        )
    return django_server_error(request)


handler404 = not_found
handler500 = server_error
