from __future__ import annotations

from django.urls import path

from chatbridge import views

urlpatterns = [
    path("chat/", views.webchat, name="webchat"),
]
