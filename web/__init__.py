"""The web edge: the operators' console and the clients' web chat, served by one FastAPI app."""
