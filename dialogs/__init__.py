"""The engine: scenarios, hearing, details, hand-off policy and the conversation service."""
