"""Checkout: quote and commit a member's basket with tier discount, coupons and points."""
