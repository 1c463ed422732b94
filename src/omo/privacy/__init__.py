"""Privacy (PDPA/GDPR): export everything held on a member; erase who they are, keeping totals."""
