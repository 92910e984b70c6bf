"""Setup pages: connect the chat platforms from the browser instead of environment variables."""
