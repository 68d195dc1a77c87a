"""Shared constants of the hub tests."""

TOKEN = "test-admin-token"
