"""Campaigns: definitions, triggers, journeys, experiments and reports."""
