"""The shared test harness: a real OctoPrint on loopback, its fixtures, the outbound guard,
Chromium's launch options, fault helpers and the plugin-API helpers.

Test modules import from here, never from each other.
"""
