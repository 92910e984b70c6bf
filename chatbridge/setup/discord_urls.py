from __future__ import annotations

from django.urls import path

from chatbridge.setup import discord_views

urlpatterns = [
    path("discord/connect/", discord_views.connect, name="discord-connect"),
    path("discord/token/", discord_views.save_token, name="discord-token"),
    path("discord/token/forget/", discord_views.forget_token, name="discord-token-forget"),
    path("discord/check/", discord_views.check, name="discord-check"),
    path("discord/channels/", discord_views.save_channels, name="discord-channels"),
]
