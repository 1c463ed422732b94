"""Operations: metrics, readiness, backups."""
