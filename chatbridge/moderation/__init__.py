"""What the bot says, checked before it is sent: blocked terms, prompt leaks, links, and
optionally OpenAI's moderation endpoint. Replies that fail are held for moderators."""
