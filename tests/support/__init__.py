"""Plain helpers shared by test modules (classes, constants, builders); no tests and no fixtures here.

Fixtures live in conftest.py files (tests/conftest.py for the ones several folders use); test modules
import helpers from here, never from another test module.
"""
