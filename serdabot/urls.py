from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from django.views.i18n import JavaScriptCatalog

# The admin and its login page say the bot's name, not "Django administration".
admin.site.site_header = _("SerdaBot administration")
admin.site.site_title = _("SerdaBot")
admin.site.index_title = _("Bot settings and history")

urlpatterns = [
    path("admin/", admin.site.urls),
    # set_language: the language form in the page header and the admin's posts here.
    path("i18n/", include("django.conf.urls.i18n")),
    # The page scripts' texts (static/*/*.js call gettext()), in the page's language.
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path("", include("chatbridge.urls")),
    # The LLM availability dashboard is the home page.
    path("", include("llm.dashboard.urls")),
]
