"""The audit log: who did what to which thing, for the actions that change access, money rules
or people."""
