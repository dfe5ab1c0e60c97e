"""Shared fixtures: a real Mosquitto broker (tests/mosquitto.py) and the leak check."""

from __future__ import annotations

pytest_plugins = ["tests.mosquitto"]
