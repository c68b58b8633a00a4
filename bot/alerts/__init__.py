"""Alerts when things break: one message per incident (feed, chat target, LLM) and one on recovery."""
