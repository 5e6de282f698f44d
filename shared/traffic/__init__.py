"""Synthetic traffic: the ground truth the whole pipeline is checked against.

Plans calls from the personas file, sends them through the gateway with the openai SDK (paced,
retried, streamed or not), and uploads what each call's usage said (run.py is the entry).
May import: shared.config, shared.errors, shared.azure_clients. Never costs/, alerts/ or email/:
the traffic timer knows nothing of prices.
"""
