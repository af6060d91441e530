"""Scheduled workflows: tick arithmetic, crontab translation, firing ticks, collecting inputs."""
