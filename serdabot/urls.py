from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("chatbridge.urls")),
    # The LLM availability dashboard is the home page.
    path("", include("llm.dashboard.urls")),
]
