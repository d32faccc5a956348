"""Outbound campaigns: the sender (claims, pacing, at-most-once sends through the messengers' Outbounds),
the `tonebot campaigns` commands, and the hook that sends beside serving processes."""
