"""Shared pytest set-up. Area fixtures live in each area's conftest.py."""
