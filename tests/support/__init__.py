"""Test helpers that are not tests themselves: local stand-ins for the services tonebot talks to."""
