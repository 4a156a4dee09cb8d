"""Webhooks: endpoints, the outbox of events, delivery (Standard Webhooks) and its log."""
