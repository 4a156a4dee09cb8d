"""Two-factor sign-in: TOTP from an authenticator app, one-time recovery codes, and the
owner's setting that requires it for every member of a store."""
