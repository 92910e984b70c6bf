from __future__ import annotations

from django.urls import include, path

from chatbridge import views

urlpatterns = [
    path("chat/", views.webchat, name="webchat"),
    path("", include("chatbridge.setup.twitch_urls")),
    path("", include("chatbridge.setup.discord_urls")),
]
