"""Notifications: templates, channels, providers, guardrails and dispatch."""
