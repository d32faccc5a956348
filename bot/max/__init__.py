"""MAX: a channel adapter for maxapi over the platform-free gateway (settings, updates, sending, long
polling and the webhook reader). Nothing is imported here: reading the settings must not load maxapi."""
