"""Filled in by its own issue; exists so the layout and migrations are stable."""
