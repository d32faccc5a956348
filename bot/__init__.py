"""Adapters and the command line: where tonebot meets terminals, messengers and operators."""
