"""Tiers: programme levels with qualification rules, upgrades at once, downgrades at review
with grace, history with reasons, benefits per level (TIER-1…4)."""
