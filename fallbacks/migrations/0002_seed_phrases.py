"""Seed the four intents the bot uses, in its own voice.

The phrases are copied here rather than imported, so this migration keeps meaning
the same thing whatever the code becomes. Each reply is sent as "@user <phrase>".
"""

from django.db import migrations

INTENTS = {
    "ask": (
        "Answers !ask when no language model is available.",
        [
            "Mes neurones sont partis prendre un café ☕ Repose ta question d'ici quelques minutes !",
            "Erreur 404 : cerveau introuvable 🧠 Je le cherche, réessaie un peu plus tard.",
            "Mon GPU fait la sieste 😴 Sans lui, je sèche. Retente ta question plus tard !",
            "Bonne question ! Hélas, mon modèle de langage est en plein reboot 🔄 Reviens dans un moment.",
            "Je fouille mes archives… ah non, elles sont en maintenance 🛠️ Repose ta question plus tard !",
            "Ma matière grise est en cours de compilation ⏳ Encore un peu de patience !",
            "Chargement de l'intelligence… 12 %… bon, ça va prendre un moment 🐢 Réessaie plus tard.",
            "Plus assez de RAM pour réfléchir à ça 💾 Redemande-moi tout à l'heure !",
            "Mes transistors font grève aujourd'hui ✊ Ta question attendra un peu.",
            "J'ai la réponse sur le bout de la puce… mais elle refuse de sortir 🤖 Retente plus tard !",
        ],
    ),
    "chill": (
        "Answers mentions and !chill.",
        [
            "Présent ! Enfin, mes circuits le sont, le reste est en veille 🤖",
            "Yo ! Je ronronne tranquillement dans mon serveur 😎",
            "Toujours en ligne, jamais fatigué… sauf quand le Wi-Fi flanche 📶",
            "Bien reçu ! Mes ventilateurs te saluent 🌀",
            "On reste chill : ici, tout tourne à 60 FPS 🎮",
            "Je te capte 5 sur 5, même avec un câble Ethernet tout tordu 🔌",
            "Pause café virtuelle en cours ☕ Tu en veux une tasse en binaire ?",
            "Mode détente activé 🛋️ Même mon processeur a levé le pied.",
            "Ah, un humain ! Ça change des logs 📜",
            "Ping reçu, pong envoyé 🏓",
            "Je ne dors jamais, je passe juste en mode économie d'énergie 🔋",
            "Ça roule ! Mes bits sont alignés et mon cache est tout frais ✨",
            "Tu me parles ? Attends, je vide mon buffer et je suis tout à toi 😄",
            "Ici tout va bien : zéro bug à l'horizon… pour l'instant 🐛",
            "Je suis un bot, mais je reconnais une bonne ambiance quand j'en vois une 🎉",
            "Chill total : mon CPU est à 42 °C, la réponse à tout 🌡️",
            "Bienvenue dans la zone zen du chat 🧘 On respire, on recompile.",
            "Fidèle au poste, comme une LED de veille 💡",
            "Tu as réveillé le bot ! Heureusement, je suis d'humeur joviale aujourd'hui 😁",
            "Je suis tout ouïe… enfin, tout capteurs 📡",
        ],
    ),
    "ask_timeout": (
        "Sent when the language model took too long to answer.",
        [
            "J'ai réfléchi trop longtemps, le sablier a gagné ⌛ Tu reposes ta question ?",
            "Mon cerveau a tellement mouliné qu'il a fini en timeout 🐌 On retente ?",
            "Trop de calculs, pas assez de temps : mon GPU a jeté l'éponge ⏱️",
            "Je réfléchissais si fort que l'horloge a perdu patience 🕰️ Réessaie !",
            "Délai dépassé ! Mes neurones sont restés coincés dans les bouchons 🚗",
        ],
    ),
    "ask_error": (
        "Sent when every language model failed.",
        [
            "Court-circuit dans mes neurones ⚡ Je reviens après un petit reboot !",
            "Tous mes cerveaux de secours sont KO 🤕 Retente dans quelques minutes.",
            "Erreur critique dans la matrice 🟥 J'appelle le support technique (c'est moi).",
            "Mes modèles ont tous planté en même temps, record battu 💥 Réessaie plus tard !",
        ],
    ),
}


def seed(apps, schema_editor):
    Intent = apps.get_model("fallbacks", "Intent")
    Phrase = apps.get_model("fallbacks", "Phrase")
    for slug, (description, texts) in INTENTS.items():
        intent, _ = Intent.objects.get_or_create(slug=slug, defaults={"description": description})
        for text in texts:
            Phrase.objects.get_or_create(intent=intent, text=text)


def unseed(apps, schema_editor):
    Intent = apps.get_model("fallbacks", "Intent")
    Intent.objects.filter(slug__in=INTENTS).delete()


class Migration(migrations.Migration):
    dependencies = [("fallbacks", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
