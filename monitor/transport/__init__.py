"""Outbound HTTP for every edge of the pipeline: one deadline per exchange, capped reads.

`deadline` bounds a whole exchange by wall clock; `session` builds requests sessions
whose connections obey it and reads delivery replies with a bound.
"""
