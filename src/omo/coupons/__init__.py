"""Coupons: templates, issuance with unguessable codes and QR, validation with reason codes,
redemption used at most once under concurrency, reversal on refund, KPIs (CPN-1…4)."""
