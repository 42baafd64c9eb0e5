"""Identifiability: structural (symbolic observability rank) and practical (Fisher, CRLB, profiles)."""
