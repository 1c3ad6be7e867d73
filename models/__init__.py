"""Canonical dossier model, registry tables and migrations."""
