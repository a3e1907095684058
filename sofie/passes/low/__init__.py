"""Passes on the low dialect (after `lower`): loop fusion, memory planning."""
