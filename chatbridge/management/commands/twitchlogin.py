"""`python manage.py twitchlogin`: connect the bot's Twitch account from a machine
without a browser, through Twitch's device-code flow.

The command prints an address (twitch.tv/activate) and a code; on any device, log in
to Twitch as the bot account, open the address and enter the code. The command polls
Twitch until then and stores the token as the connect page would. `--broadcaster`
authorizes a channel (channel:bot) instead: log in as the broadcaster.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, no_translations

from chatbridge.setup import twitch_accounts, twitch_oauth
from chatbridge.setup.twitch_accounts import BOT_SCOPES, CHANNEL_SCOPES, MissingScopes
from chatbridge.setup.twitch_oauth import TwitchError
from chatbridge.stored_config import twitch_config


class Command(BaseCommand):
    help = "Connect the bot's Twitch account (or authorize a channel) with a code, without a browser here."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--broadcaster",
            action="store_true",
            help="Authorize a channel (channel:bot) instead: log in to Twitch as the broadcaster.",
        )

    @no_translations  # a terminal's messages are in English, like the logs (setup errors are page text too)
    def handle(self, *args: Any, **options: Any) -> None:
        config = twitch_config()
        if not config.client_id:
            raise CommandError(
                "No Twitch client id: set TWITCH_CLIENT_ID, or enter it on the /twitch/connect/ page."
            )
        broadcaster: bool = options["broadcaster"]
        scopes = CHANNEL_SCOPES if broadcaster else BOT_SCOPES
        account = "the broadcaster's account" if broadcaster else "the bot's account (not the streamer's)"
        try:
            device = twitch_oauth.start_device_flow(config, scopes)
            self.stdout.write(
                f"Log in to Twitch as {account}, open {device.verification_uri}\n"
                f"and enter the code: {device.user_code}\n"
                f"Waiting (the code is valid {int(device.expires_in // 60)} minutes; Ctrl-C to give up)..."
            )
            grant = twitch_oauth.wait_for_device_token(config, device, scopes)
            identity = twitch_oauth.validate(config, grant.access_token)
            if broadcaster:
                twitch_accounts.authorize_channel(identity)
                self.stdout.write(self.style.SUCCESS(f"channel {identity.login} authorized and joined"))
            else:
                twitch_accounts.connect_bot(grant, identity)
                self.stdout.write(self.style.SUCCESS(f"connected as {identity.login}"))
        except (TwitchError, MissingScopes) as exc:
            raise CommandError(str(exc)) from None
        except KeyboardInterrupt:
            raise CommandError("stopped: nothing was stored") from None
