"""`tonebot eval`: scoring the bot's own code paths on labelled JSON Lines files."""

from dialogs.evaluation.runner import run_evaluation

__all__ = ["run_evaluation"]
