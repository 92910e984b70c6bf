"""The web interface in French by default and in English on request; no page text left out.

The rest of the suite pins English (tests/conftest.py `english_ui`); this module overrides
that fixture to check the real default.
"""

from __future__ import annotations

import ast
import gettext
import html
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.template.base import Lexer, TokenType
from django.test import Client

from chatbridge.models import ChannelSettings

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
LOCALE = ROOT / "locale"
NBSP = "\u00a0"


@pytest.fixture(autouse=True)
def english_ui() -> None:
    """Overrides conftest's: this module sees the project's own LANGUAGE_CODE."""


@pytest.fixture
def staff(db: None) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("streamer", "s@example.com", "x"))
    return client


def text_of(content: bytes) -> str:
    """The page's visible text, tags removed and spaces (non-breaking ones too) collapsed."""
    text = re.sub(r"<script.*?</script>|<style.*?</style>|<[^>]+>", " ", content.decode(), flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(text).replace(NBSP, " "))


def test_french_is_the_default_and_english_the_other_choice() -> None:
    assert settings.LANGUAGE_CODE == "fr"
    assert [code for code, _name in settings.LANGUAGES] == ["fr", "en"]
    assert "django.middleware.locale.LocaleMiddleware" in settings.MIDDLEWARE


def test_the_dashboard_is_in_french_by_default(staff: Client) -> None:
    response = staff.get("/")

    page = text_of(response.content)
    assert b'<html lang="fr">' in response.content
    assert "Disponibilité des LLM" in page
    assert "Tableau de bord" in page and "Chat web" in page
    assert "Aucun incident sur cette période." in page
    assert "LLM availability" not in page and "No incident in this window." not in page


def test_the_web_chat_is_in_french_by_default(staff: Client) -> None:
    page = text_of(staff.get("/chat/").content)

    assert "Chat web" in page and "Vous êtes streamer" in page
    assert "Envoyer" in page and "connexion…" in page
    assert "Web chat" not in page and "Send" not in page


def test_the_page_scripts_get_their_texts_in_the_page_language(staff: Client) -> None:
    page = staff.get("/").content.decode()
    catalogue = staff.get("/jsi18n/").content.decode()

    assert '<script src="/jsi18n/">' in page
    assert '"Live": "En direct"' in catalogue
    assert "reconnexion dans %(seconds)s s" in catalogue


def test_the_admin_login_page_says_serdabot_in_french() -> None:
    page = text_of(Client().get("/admin/login/").content)

    assert "Administration de SerdaBot" in page
    assert "Connexion" in page  # Django's own French catalogue
    assert "Django" not in page


def test_the_admin_index_says_serdabot_and_lists_the_apps_in_french(staff: Client) -> None:
    page = text_of(staff.get("/admin/").content)

    assert "Administration de SerdaBot" in page
    assert "Réglages et historique du bot" in page
    assert "Phrases de secours" in page and "Disponibilité des LLM" in page
    assert "Termes bloqués" in page and "Destinations d'alerte" in page
    assert "Django" not in page


def test_a_changelist_shows_french_labels_and_choices(staff: Client) -> None:
    ChannelSettings.objects.create(platform="twitch", channel="streamer", fallback_mode="silent")

    page = text_of(staff.get("/admin/chatbridge/channelsettings/").content)

    assert "Réglages de chaîne" in page
    assert "Plateforme" in page and "Délai par utilisateur (s)" in page
    assert "Une phrase neutre" in page  # a choice label
    assert "Channel settings" not in page and "One neutral sentence" not in page


def test_a_change_form_shows_french_help_and_fieldsets(staff: Client) -> None:
    page = text_of(staff.get("/admin/chatbridge/channelsettings/add/").content)

    assert "Personnalité" in page and "Délais" in page
    assert "La langue des réponses." in page


def test_the_language_form_is_on_the_pages_and_the_admin(staff: Client) -> None:
    for url in ("/", "/chat/", "/admin/", "/admin/chatbridge/channelsettings/"):
        page = staff.get(url).content.decode()
        form = re.search(
            r'<form action="/i18n/setlang/" method="post" class="language-form".*?</form>', page, re.S
        )
        assert form is not None, url
        assert 'name="csrfmiddlewaretoken"' in form.group(0), url
        assert 'name="language" value="en"' in form.group(0), url
        assert 'value="fr"' not in form.group(0), url  # the current language is not offered again
    login = Client().get("/admin/login/").content.decode()
    assert 'action="/i18n/setlang/"' in login


def test_switching_to_english_turns_every_page_english(staff: Client) -> None:
    switched = staff.post("/i18n/setlang/", {"language": "en", "next": "/admin/"})

    assert switched.status_code == 302 and switched["Location"] == "/admin/"
    dashboard = staff.get("/")
    assert b'<html lang="en">' in dashboard.content
    assert "LLM availability" in text_of(dashboard.content)
    assert "Web chat" in text_of(staff.get("/chat/").content)
    admin = text_of(staff.get("/admin/").content)
    assert "SerdaBot administration" in admin and "Fallback phrases" in admin
    assert "Channel settings" in text_of(staff.get("/admin/chatbridge/channelsettings/").content)
    assert '"Live": "En direct"' not in staff.get("/jsi18n/").content.decode()
    # And back: the form now offers French.
    assert 'name="language" value="fr"' in dashboard.content.decode()
    staff.post("/i18n/setlang/", {"language": "fr", "next": "/"})
    assert "Disponibilité des LLM" in text_of(staff.get("/").content)


def test_a_browser_asking_for_english_gets_english(staff: Client) -> None:
    english = text_of(staff.get("/", headers={"accept-language": "en-US,en;q=0.9"}).content)
    french = text_of(staff.get("/", headers={"accept-language": "fr-FR,fr;q=0.9"}).content)
    other = text_of(staff.get("/", headers={"accept-language": "de-DE"}).content)

    assert "LLM availability" in english
    assert "Disponibilité des LLM" in french
    assert "Disponibilité des LLM" in other  # a language the site lacks: the default


def test_the_language_cookie_wins_over_the_browser() -> None:
    client = Client()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"

    page = text_of(client.get("/admin/login/", headers={"accept-language": "fr"}).content)

    assert "SerdaBot administration" in page


def test_the_lockout_page_is_translated(db: None) -> None:
    User.objects.create_superuser("streamer", "s@example.com", "the-password")
    form = {"username": "streamer", "password": "wrong", "next": "/"}
    responses = [Client().post("/admin/login/?next=/", form) for _ in range(settings.AXES_FAILURE_LIMIT)]

    assert responses[-1].status_code == 429
    page = text_of(responses[-1].content)
    assert "Trop d'échecs de connexion" in page
    assert "Réessayez dans 15 minutes." in page
    assert "Sachez que les deux champs peuvent être sensibles à la casse" in text_of(responses[0].content)


# ---- Templates: no page text outside the translation tags ----

# Words that are the same in every language: names, units, column keys.
NON_WORDS = {"SerdaBot", "p50", "p95", "ms"}
# Attributes whose value a person reads (or hears, for aria-label).
READ_ATTRIBUTES = re.compile(r'\b(?:title|placeholder|aria-label|alt)="([^"]*)"')


def skeleton(source: str) -> str:
    """The template's own text: tags and variables become \\x00, translated blocks vanish."""
    parts: list[str] = []
    skipping: str | None = None
    for token in Lexer(source).tokenize():
        if token.token_type == TokenType.BLOCK:
            name = token.contents.split()[0] if token.contents else ""
            if skipping is None and name in ("blocktranslate", "blocktrans", "comment", "verbatim"):
                skipping = {"blocktrans": "endblocktrans"}.get(name, "end" + name)
            elif skipping == name:
                skipping = None
            parts.append("\x00")
        elif token.token_type == TokenType.TEXT and skipping is None:
            parts.append(token.contents)
        else:
            parts.append("\x00")
    return "".join(parts)


def untranslated_words(source: str) -> list[str]:
    text = re.sub(r"<!--.*?-->", " ", skeleton(source), flags=re.S)
    # Code is not prose: scripts, styles and <code> samples (commands, config names).
    text = re.sub(r"<(script|style|code)\b.*?</\1>", " ", text, flags=re.S | re.I)
    read = " ".join(READ_ATTRIBUTES.findall(text))
    text = re.sub(r"<[^>]*>", " ", text) + " " + read
    text = re.sub(r"&#?\w+;", " ", text)
    words = re.findall(r"[^\W\d_][\w'’-]*", text)
    return [w for w in words if w not in NON_WORDS]


def test_the_check_finds_untranslated_text() -> None:
    assert untranslated_words("<p>Hello {{ name }}</p>") == ["Hello"]
    assert untranslated_words('<input placeholder="Type here">') == ["Type", "here"]
    assert untranslated_words('{% load i18n %}<p title="{% translate "Hi" %}">{% translate "Hi" %}</p>') == []
    assert untranslated_words("{% blocktranslate %}Hello {{ name }}{% endblocktranslate %}<b>p95</b>") == []
    assert untranslated_words("<!-- note --><code>manage.py runbot</code>&nbsp;·") == []


@pytest.mark.parametrize(
    "template", sorted(p.relative_to(TEMPLATES).as_posix() for p in TEMPLATES.rglob("*.html")), ids=str
)
def test_no_untranslated_text_in_the_templates(template: str) -> None:
    words = untranslated_words((TEMPLATES / template).read_text(encoding="utf-8"))

    assert words == [], f"{template}: text outside {{% translate %}}: {' '.join(words)}"


# ---- Catalogues: French complete, compiled files current ----


@dataclass
class Entry:
    msgid: str = ""
    plural: str | None = None
    context: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    fuzzy: bool = False


def read_po(path: Path) -> list[Entry]:
    """The entries of a .po file as xgettext writes it (obsolete ones left out), header first."""
    entries: list[Entry] = []
    for block in re.split(r"\n\s*\n", path.read_text(encoding="utf-8")):
        lines = [line for line in block.strip().splitlines() if not line.startswith("#~")]
        if not any(line.startswith("msgid") for line in lines):
            continue
        entry, target = Entry(), ""
        for line in lines:
            if line.startswith("#,"):
                entry.fuzzy = "fuzzy" in line
            elif line.startswith("#"):
                continue
            elif match := re.match(r'(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d)\])?) (".*")$', line):
                keyword, index, value = match.group(1), match.group(2), ast.literal_eval(match.group(3))
                target = keyword if index is None else f"msgstr{index}"
                if keyword.startswith("msgstr"):
                    entry.msgstr[int(index or 0)] = value
                else:
                    setattr(
                        entry, {"msgctxt": "context", "msgid_plural": "plural"}.get(keyword, "msgid"), value
                    )
            elif line.startswith('"'):
                value = ast.literal_eval(line)
                if target.startswith("msgstr"):
                    key = int(target[6:] or 0)
                    entry.msgstr[key] += value
                else:
                    name = {"msgctxt": "context", "msgid_plural": "plural"}.get(target, "msgid")
                    setattr(entry, name, getattr(entry, name) + value)
        entries.append(entry)
    return entries


DOMAINS = ["django", "djangojs"]


@pytest.mark.parametrize("domain", DOMAINS)
def test_the_french_catalogue_has_no_untranslated_or_fuzzy_entry(domain: str) -> None:
    entries = read_po(LOCALE / "fr" / "LC_MESSAGES" / f"{domain}.po")

    assert entries[0].msgid == "" and not entries[0].fuzzy  # the header
    assert len(entries) > 10
    untranslated = [e.msgid for e in entries[1:] if not all(e.msgstr.values()) or len(e.msgstr) < 1]
    fuzzy = [e.msgid for e in entries[1:] if e.fuzzy]
    assert untranslated == [], f"untranslated in {domain}.po: {untranslated}"
    assert fuzzy == [], f"fuzzy in {domain}.po: {fuzzy}"


def placeholders(text: str) -> set[str]:
    return set(re.findall(r"%\(\w+\)[sd]|\{\w*\}", text))


@pytest.mark.parametrize("domain", DOMAINS)
def test_each_translation_keeps_the_placeholders(domain: str) -> None:
    for entry in read_po(LOCALE / "fr" / "LC_MESSAGES" / f"{domain}.po")[1:]:
        expected = placeholders(entry.msgid) | placeholders(entry.plural or "")
        for text in entry.msgstr.values():
            # A singular may say "1" in words and drop its count; nothing else may go.
            assert placeholders(text) <= expected, (entry.msgid, text)
            assert expected - placeholders(text) <= {"%(n)d", "%(n)s", "%(count)d"}, (entry.msgid, text)


def compiled(entries: list[Entry]) -> dict[object, str]:
    """What the .mo holds for these entries, keyed as gettext's catalogue keys them."""
    catalogue: dict[object, str] = {}
    for entry in entries[1:]:
        if entry.fuzzy or not all(entry.msgstr.values()):
            continue  # msgfmt leaves these out
        msgid = f"{entry.context}\x04{entry.msgid}" if entry.context is not None else entry.msgid
        if entry.plural is None:
            catalogue[msgid] = entry.msgstr[0]
        else:
            catalogue.update({(msgid, index): text for index, text in entry.msgstr.items()})
    return catalogue


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("domain", DOMAINS)
def test_the_compiled_catalogue_matches_its_source(language: str, domain: str) -> None:
    directory = LOCALE / language / "LC_MESSAGES"
    with open(directory / f"{domain}.mo", "rb") as mo:
        loaded = gettext.GNUTranslations(mo)._catalog  # type: ignore[attr-defined]

    loaded = {key: text for key, text in loaded.items() if key != ""}  # the header
    assert loaded == compiled(read_po(directory / f"{domain}.po")), (
        f"{language}/{domain}.mo is not the compiled {domain}.po: run scripts/messages.sh"
    )


@pytest.mark.parametrize("domain", DOMAINS)
def test_both_languages_have_the_same_messages(domain: str) -> None:
    def ids(language: str) -> set[tuple[str | None, str]]:
        return {(e.context, e.msgid) for e in read_po(LOCALE / language / "LC_MESSAGES" / f"{domain}.po")}

    assert ids("fr") == ids("en")


def test_after_a_form_posted_back_the_switch_returns_to_the_page_it_came_from(staff: Client) -> None:
    # A refused Twitch application form is rendered at its POST-only URL.
    page = staff.post(
        "/twitch/app/", {"client_id": "x" * 300}, HTTP_REFERER="http://testserver/twitch/connect/"
    ).content.decode()
    form = re.search(r'<form action="/i18n/setlang/".*?</form>', page, re.S)
    assert form is not None
    assert 'name="next" type="hidden" value="http://testserver/twitch/connect/"' in form.group(0)
