"""What every messenger adapter shares: per-chat queues, throttling, retries, splits, outbox delivery."""
