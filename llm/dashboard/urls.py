from __future__ import annotations

from django.urls import path

from llm.dashboard import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("export/<slug:kind>.csv", views.export_csv, name="dashboard-export"),
]
