"""Shared code for the learning-rate course."""
