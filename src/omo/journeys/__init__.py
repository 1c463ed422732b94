"""Journeys: trigger, audience, steps; who entered, what they got, what it earned."""
