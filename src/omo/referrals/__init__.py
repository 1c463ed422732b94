"""Referrals (REF-1): a code per member, attribution at enrolment, both sides rewarded on the
referee's first qualifying order, no self-referral or referral within one person."""
