"""The persona labels."""

from __future__ import annotations

from typing import Literal

Persona = Literal["unsure", "talker", "positive", "aggressor", "sysadmin", "neutral"]
PERSONAS: tuple[Persona, ...] = ("unsure", "talker", "positive", "aggressor", "sysadmin", "neutral")
NEUTRAL: Persona = "neutral"
