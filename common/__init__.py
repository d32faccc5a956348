"""Below everything: the vocabulary the engine, storage and adapters share (messages, events, state,
names), text and YAML helpers. Imports nothing of tonebot's other packages."""
