"""Campaigns: an agent phones a list of numbers."""
