"""Wukong text and image rules."""
