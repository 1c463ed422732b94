"""Messaging: the outbox that side effects go through (delivery lands with the journeys issue)."""
