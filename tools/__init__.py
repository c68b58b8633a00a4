"""Developer tools that run against briefbot from outside the bot package."""
