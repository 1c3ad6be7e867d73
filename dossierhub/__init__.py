"""DossierHub engine: settings, sync, registry store, CLI."""
