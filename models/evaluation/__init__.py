"""Measuring how well faces are named: verification, open-set identification, visitor grouping."""
