"""The bill check: our cost per model account and UTC day against what Azure billed (Cost Management).

Once a day (BILL_CHECK_INTERVAL_HOURS) after the costs run and the bypass check, read the model accounts'
actual cost per UTC day, resource and meter from Cost Management's Query API (query.py, azure-mgmt-costmanagement)
for the settled days (BILL_CHECK_SETTLE_HOURS after their end; the last BILL_CHECK_DAYS of them, so late rows
restate their day), set it beside the cost summaries of the same days summed per account (ours.py: the latest
complete revision, each deployment placed in its account by ARM discovery, shared/costs/deployments.py), name
the likely cause of a gap from the evidence (compare.py), write each changed comparison as a new revision to
BillReconciliation_CL and hand on a BillReport (outputs.py, stdlib only) that the alert rules of kind `bill_gap`
judge (run.py is the entry). Cost Management throttled or down: retried within the check's budget
(shared/azure_retry.py, the loop the bypass check shares), else the days stay pending, logged and written.
May import: shared.azure_clients, shared.azure_retry, shared.config, shared.errors, shared.money, shared.windows,
shared.logs, and of costs/ only shared.costs.deployments (which account a deployment is in) and
shared.costs.catalog_retail (what an Azure meter name bills). Never traffic/, alerts/ or email/.
"""
