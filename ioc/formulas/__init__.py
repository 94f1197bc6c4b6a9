"""Official formulas as small pure functions (see shared/domain/INDICATORS.md)."""
