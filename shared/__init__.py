"""The library the function app calls, laid out as the data flows:

    traffic/ ──▶ (gateway metrics) ──▶ logs/ (KQL, parts, uploads) ──▶ costs/ ──▶ alerts/ ──▶ email/

timers.py is the one entry per timer; config.py declares every app setting once; errors.py is the
one exception tree; money.py, json_input.py and windows.py are the shared small parts; azure_clients.py
builds the Azure SDK clients from settings. Each package's docstring says what it may import
(tests/test_imports.py keeps them true); nothing here imports standins/.
"""
