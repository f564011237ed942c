from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import path
from notes.models import Note


def index(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"app": "demo", "notes": Note.objects.count()})


urlpatterns = [
    path("", index),
    path("admin/", admin.site.urls),
]
