"""Websocket routes of every app, in one list."""

from __future__ import annotations

from django.urls import path

from chatbridge.consumers import WebChatConsumer
from llm.dashboard.consumers import DashboardConsumer

websocket_urlpatterns = [
    path("ws/chat/", WebChatConsumer.as_asgi()),
    path("ws/dashboard/", DashboardConsumer.as_asgi()),
]
