"""Staff tasks: something for a store's staff to do about a member (a care call after a low
NPS …)."""
