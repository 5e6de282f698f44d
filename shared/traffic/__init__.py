"""Synthetic traffic: the ground truth the whole pipeline is checked against.

Plans calls from the personas file (personas.py, prompts.py, plan.py), sends them through the
gateway with the openai SDK, paced and retried, streamed or not (pacing.py, client.py), and uploads
what each call's usage said (results.py, upload.py); run.py is the entry.
May import: shared.config, shared.errors, shared.json_input, shared.azure_retry, shared.logs (the upload). The
traffic timer knows nothing of prices: never costs/, alerts/ or email/.
"""
