"""Configuration: feeds.yaml (schema and loading) and the environment."""

from bot.config.cron import CronError, build_cron_trigger
from bot.config.durations import Duration, format_duration, parse_duration
from bot.config.env import Env
from bot.config.errors import ConfigError
from bot.config.loading import DEFAULT_CONFIG, load_config, modified_time, reload_settings
from bot.config.schema import (
    AlertsConfig,
    DigestConfig,
    FeedConfig,
    FetchConfig,
    LLMConfig,
    RouteConfig,
    Settings,
    TargetField,
    TargetParser,
    TopicConfig,
    split_target,
)

__all__ = [
    "AlertsConfig", "ConfigError", "CronError", "DEFAULT_CONFIG", "DigestConfig", "Duration", "Env", "FeedConfig",
    "FetchConfig", "LLMConfig", "RouteConfig", "Settings", "TargetField", "TargetParser", "TopicConfig",
    "build_cron_trigger", "format_duration", "load_config", "modified_time", "parse_duration", "reload_settings",
    "split_target",
]
