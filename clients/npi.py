"""Kept for clients/migrations/0001, which names `clients.npi.validate_npi`: the NPI check
lives in `portal.npi` (firms have NPIs too)."""

from portal.npi import validate_npi

__all__ = ["validate_npi"]
