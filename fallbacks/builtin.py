"""Phrases kept in code, used when the database cannot be read."""

from __future__ import annotations

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
}
