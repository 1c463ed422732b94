"""Staff users of the admin UI and the POS page: roles, store binding, argon2 passwords."""
