"""Integrations with host applications: request tracking for WSGI and Flask apps."""
