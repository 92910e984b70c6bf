"""Seed the `blocked` intent (a reply moderation held back), English phrases for channels
set to English, and mark the bot's own intents as not being chat commands.

The phrases seeded in 0002 are French: they are tagged so, and English channels get the
English ones added here. Phrases a streamer added keep "any language".
"""

import importlib

from django.db import migrations

SEEDED_FRENCH_INTENTS = ("ask", "chill", "ask_timeout", "ask_error")
# Intents the bot answers with for its own states: `!ask_timeout` in chat means nothing.
NOT_COMMANDS = ("ask_timeout", "ask_error", "blocked")

BLOCKED = (
    "Sent instead of an answer that moderation held back.",
    {
        "fr": [
            "Ma réponse a été interceptée par le pare-feu de la bienséance 🧱 On change de sujet ?",
            "Réponse censurée par mon propre antivirus 🛡️ Pose-moi autre chose !",
            "J'allais dire une bêtise, mon filtre anti-spam m'a sauvé 😇",
            "Ce que j'ai pondu ne passe pas la modération 🚫 Question suivante ?",
            "Oups, réponse mise en quarantaine 🧪 Les modos y jetteront un œil.",
        ],
        "en": [
            "My answer got caught by my own firewall 🧱 Try another topic?",
            "Reply quarantined by my antivirus 🛡️ Ask me something else!",
            "I was about to say something silly; my spam filter saved me 😇",
            "That answer didn't pass moderation 🚫 Next question?",
        ],
    },
)

ENGLISH = {
    "ask": [
        "My neurons went for a coffee break ☕ Ask again in a few minutes!",
        "Error 404: brain not found 🧠 Try again a bit later.",
        "My GPU is taking a nap 😴 Ask me again soon!",
        "Loading intelligence… 12 %… this may take a while 🐢",
        "Not enough RAM to think about that right now 💾 Ask me later!",
    ],
    "chill": [
        "Present! Well, my circuits are, the rest is on standby 🤖",
        "Yo! Purring quietly in my server rack 😎",
        "Ping received, pong sent 🏓",
        "I never sleep, I just switch to power-saving mode 🔋",
        "A human! Makes a change from the logs 📜",
    ],
    "ask_timeout": [
        "I thought so hard the hourglass won ⌛ Ask again?",
        "Too many calculations, not enough time ⏱️ Try again!",
        "Timeout! My neurons got stuck in traffic 🚗",
    ],
    "ask_error": [
        "Short circuit in my neurons ⚡ Back after a quick reboot!",
        "All my backup brains are down 🤕 Try again in a few minutes.",
        "Critical error in the matrix 🟥 Calling tech support (that's me).",
    ],
}


def seed(apps, schema_editor):
    Intent = apps.get_model("fallbacks", "Intent")
    Phrase = apps.get_model("fallbacks", "Phrase")
    seeded = Intent.objects.filter(slug__in=SEEDED_FRENCH_INTENTS)
    # 0002's own list: what it seeded is French, whatever the streamer added since is left as is.
    seed_0002 = importlib.import_module("fallbacks.migrations.0002_seed_phrases")
    french = [text for _, texts in seed_0002.INTENTS.values() for text in texts]
    Phrase.objects.filter(intent__in=seeded, text__in=french).update(language="fr")
    description, by_language = BLOCKED
    blocked, _ = Intent.objects.get_or_create(
        slug="blocked", defaults={"description": description, "command": False}
    )
    for language, texts in by_language.items():
        for text in texts:
            Phrase.objects.get_or_create(intent=blocked, text=text, defaults={"language": language})
    for slug, texts in ENGLISH.items():
        intent = Intent.objects.filter(slug=slug).first()
        if intent is None:
            continue  # the streamer deleted it: not brought back
        for text in texts:
            Phrase.objects.get_or_create(intent=intent, text=text, defaults={"language": "en"})
    Intent.objects.filter(slug__in=NOT_COMMANDS).update(command=False)


def unseed(apps, schema_editor):
    Intent = apps.get_model("fallbacks", "Intent")
    Phrase = apps.get_model("fallbacks", "Phrase")
    Intent.objects.filter(slug="blocked").delete()
    # Only in the intents they were added to: a streamer's intent may use the same words.
    for slug, texts in ENGLISH.items():
        Phrase.objects.filter(intent__slug=slug, text__in=texts, language="en").delete()


class Migration(migrations.Migration):
    dependencies = [("fallbacks", "0003_custom_commands")]

    operations = [migrations.RunPython(seed, unseed)]
