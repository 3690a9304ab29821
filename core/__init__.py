"""Shared foundation: settings, database, clock, event intake, expressions, program loading."""
