from __future__ import annotations

from django.urls import path

from chatbridge.setup import twitch_views

urlpatterns = [
    path("twitch/connect/", twitch_views.connect, name="twitch-connect"),
    path("twitch/app/", twitch_views.save_app, name="twitch-app"),
    path("twitch/authorize/<str:purpose>/", twitch_views.authorize, name="twitch-authorize"),
    path("twitch/callback/", twitch_views.callback, name="twitch-callback"),
    path("twitch/channels/", twitch_views.add_channel, name="twitch-channel-add"),
    path("twitch/channels/<int:pk>/joined/", twitch_views.set_joined, name="twitch-channel-joined"),
    path("twitch/channels/<int:pk>/remove/", twitch_views.remove_channel, name="twitch-channel-remove"),
]
