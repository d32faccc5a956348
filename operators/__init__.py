"""The people's side: operator accounts, passwords, and what operators do to handed-off conversations."""
