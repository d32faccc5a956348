"""The misunderstood inbox's logic for editors: messages grouped by likeness with personal data hidden
(grouping.py), and the YAML an editor pastes to teach the bot (snippets.py, placed by placement.py)."""
