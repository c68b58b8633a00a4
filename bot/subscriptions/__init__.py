"""Feeds and follows managed from chat and the CLI, stored in the database and merged with feeds.yaml."""
