"""Phrases kept in code, used when the database cannot be read."""

from __future__ import annotations

# French, the bot's default language. Also what answers a channel in any other language.
PHRASES: dict[str, tuple[str, ...]] = {
    "ask": (
        "Mon cerveau n'a pas encore fini de démarrer 🧠 Repose ta question dans un instant !",
        "Je tourne sur mes circuits de secours, la réflexion profonde attendra un peu 🔧",
        "Aucun neurone disponible pour le moment, retente ta chance bientôt 🤖",
    ),
    "chill": (
        "Je suis là, en mode secours mais toujours de bonne humeur 😄",
        "Toujours debout, même sur batterie de réserve 🔋",
        "Le bot veille, même quand sa base de données fait la sieste 💤",
    ),
    "ask_timeout": (
        "Ma réflexion a dépassé le temps imparti ⏳ Tu retentes ?",
        "Trop lent, même pour un bot 🐢 Repose ta question ?",
        "Le chrono a gagné cette manche ⏱️ On remet ça ?",
    ),
    "ask_error": (
        "Mes circuits de réflexion sont en panne ⚡ Réessaie un peu plus tard.",
        "Plantage général dans la salle des serveurs 💥 On retente bientôt ?",
        "Tout redémarre par ici 🔄 Un peu de patience !",
    ),
    # A held answer must still be replaced by something that says so, even without a database.
    "blocked": (
        "Réponse bloquée par mon filtre de secours 🚧 On parle d'autre chose ?",
        "Mon module de politesse a dit non 🙅 Question suivante !",
        "Cette réponse reste dans mes logs, pas dans le chat 🔒",
    ),
}

# For channels set to English.
ENGLISH: dict[str, tuple[str, ...]] = {
    "ask": (
        "My brain is still booting up 🧠 Ask again in a moment!",
        "Running on backup circuits, deep thoughts will have to wait 🔧",
        "No neurons available right now, try again soon 🤖",
    ),
    "chill": (
        "Still here, in backup mode but in a good mood 😄",
        "Up and running, even on reserve battery 🔋",
        "The bot keeps watch, even while its database naps 💤",
    ),
    "ask_timeout": (
        "My thinking ran out of time ⏳ Try again?",
        "Too slow, even for a bot 🐢 Ask me again?",
        "The clock won this round ⏱️ Once more?",
    ),
    "ask_error": (
        "My thinking circuits are down ⚡ Try again a bit later.",
        "Total crash in the server room 💥 Retry soon?",
        "Everything is rebooting over here 🔄 Hang on!",
    ),
    "blocked": (
        "Answer stopped by my backup filter 🚧 Let's talk about something else?",
        "My politeness module said no 🙅 Next question!",
        "That answer stays in my logs, not in chat 🔒",
    ),
}

LANGUAGES: dict[str, dict[str, tuple[str, ...]]] = {"fr": PHRASES, "en": ENGLISH}
