"""Webhooks: the outbox's facts (an order recorded, a level changed, points redeemed …) posted to
an integrator's URL, signed, in order, at least once, each subscription from where it stopped."""
