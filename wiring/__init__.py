"""Above the engine and storage, below the adapters: settings and the runtime built from them."""
