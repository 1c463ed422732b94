"""Points: the programme's rules, an append-only integer ledger with lots, FIFO expiry,
pending points and reversals (PTS-1…4)."""
