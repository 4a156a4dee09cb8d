"""Shoppers of a store: accounts, sign-ins (token families), codes, password resets, orders."""
