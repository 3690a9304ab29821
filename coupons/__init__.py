"""Coupons: definitions, codes, eligibility and redemption."""
