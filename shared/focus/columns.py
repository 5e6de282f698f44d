"""The FOCUS columns of the export: which ones, their types, and what each of our rows puts in them.

FOCUS 1.2, the current release of the FinOps Open Cost and Usage Specification
(FinOps-Open-Cost-and-Usage-Spec/FOCUS_Spec, tag v1.2, specification/columns/*.md: each column's feature level,
data type and nullability; specification/attributes/*.md: date/time, numeric, null and unit formats). Every
Mandatory column is present; of the Conditional and Recommended ones, those Cost Management's own FOCUS export
fills for an Azure OpenAI / Foundry account and that our summaries can fill honestly. The values follow
Cost Management's FOCUS dataset so the files merge with its exports (microsoft/finops-toolkit
src/open-data/Services.csv: microsoft.cognitiveservices/accounts is ServiceName "Azure AI Services", ServiceCategory
"AI and Machine Learning", ServiceSubcategory "AI Platforms", publisher Microsoft; src/open-data/ResourceTypes.csv:
its display name "Azure AI Foundry"; docs-mslearn/focus/mapping.md: ResourceId is the billed resource, SubAccountId
the subscription, PricingCategory "Standard" for pay-as-you-go prices).

What a row is: one UTC day x deployment x model x deployment type x APIM subscription x user x API x price
version x cost basis x currency of the cost summaries (ChargePeriod: the day). Its cost is our list-price cost
(the price table's), so BilledCost = EffectiveCost = ListCost = ContractedCost; the bill check
(BillReconciliation_CL) says how far the bill differs. It splits the same spend as the account's own rows in Cost
Management's export by caller: sum one or the other, not both (x_CostSource tells them apart).
Left out: ListUnitPrice and ContractedUnitPrice (a row mixes input, cached and output tokens, each at its own
price: no one unit price times PricingQuantity gives the cost; the prices are in the price table of x_PriceVersion),
RegionId / RegionName (the summaries do not know the account's region), commitment-discount and capacity-reservation
columns (none apply), Tags, Sku* and InvoiceId (not invoiced by us).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

FocusType = Literal["String", "Decimal", "Date/Time", "Boolean", "Integer"]

FOCUS_VERSION = "1.2"
# Cost Management's FOCUS values for an Azure AI Foundry / Azure OpenAI account (module docstring).
PROVIDER = "Microsoft"
SERVICE_NAME = "Azure AI Services"
SERVICE_CATEGORY = "AI and Machine Learning"
SERVICE_SUBCATEGORY = "AI Platforms"
RESOURCE_TYPE = "Azure AI Foundry"
X_RESOURCE_TYPE = "microsoft.cognitiveservices/accounts"
COST_SOURCE = "apim-token-costs"  # x_CostSource: these rows split the account's spend by caller; see the docstring


@dataclass(frozen=True)
class Column:
    name: str
    type: FocusType
    nullable: bool


# FOCUS columns first (in the specification's alphabetical order), then ours (x_).
COLUMNS: tuple[Column, ...] = (
    Column("BilledCost", "Decimal", False),
    Column("BillingAccountId", "String", False),
    Column("BillingAccountName", "String", True),
    Column("BillingCurrency", "String", False),
    Column("BillingPeriodEnd", "Date/Time", False),
    Column("BillingPeriodStart", "Date/Time", False),
    Column("ChargeCategory", "String", False),
    Column("ChargeClass", "String", True),
    Column("ChargeDescription", "String", True),
    Column("ChargeFrequency", "String", False),
    Column("ChargePeriodEnd", "Date/Time", False),
    Column("ChargePeriodStart", "Date/Time", False),
    Column("ConsumedQuantity", "Decimal", True),
    Column("ConsumedUnit", "String", True),
    Column("ContractedCost", "Decimal", False),
    Column("EffectiveCost", "Decimal", False),
    Column("InvoiceIssuerName", "String", False),
    Column("ListCost", "Decimal", False),
    Column("PricingCategory", "String", True),
    Column("PricingQuantity", "Decimal", True),
    Column("PricingUnit", "String", True),
    Column("ProviderName", "String", False),
    Column("PublisherName", "String", False),
    Column("ResourceId", "String", True),
    Column("ResourceName", "String", True),
    Column("ResourceType", "String", True),
    Column("ServiceCategory", "String", False),
    Column("ServiceName", "String", False),
    Column("ServiceSubcategory", "String", False),
    Column("SubAccountId", "String", True),
    Column("x_CostSource", "String", False),
    Column("x_ResourceType", "String", True),
    Column("x_Deployment", "String", False),
    Column("x_Model", "String", False),
    Column("x_ModelVersion", "String", True),
    Column("x_DeploymentType", "String", True),
    Column("x_ApimSubscriptionId", "String", True),
    Column("x_UserId", "String", True),
    Column("x_ApiId", "String", True),
    Column("x_Requests", "Integer", False),
    Column("x_PromptTokens", "Integer", False),
    Column("x_CachedPromptTokens", "Integer", False),
    Column("x_CompletionTokens", "Integer", False),
    Column("x_TotalTokens", "Integer", False),
    Column("x_EstimatedRequests", "Integer", False),
    Column("x_EstimatedTokens", "Integer", False),
    Column("x_EstimatedCost", "Decimal", False),
    Column("x_EstimatedShare", "Decimal", True),
    Column("x_Unpriced", "Boolean", False),
    Column("x_UnpricedTokens", "Integer", False),
    Column("x_PriceVersion", "String", True),
    Column("x_CostBasis", "String", True),
    Column("x_Windows", "Integer", False),
    Column("x_Revision", "Date/Time", False),
)
COLUMN_NAMES: tuple[str, ...] = tuple(column.name for column in COLUMNS)

Cell = str | None  # None: null (an empty CSV field); FOCUS forbids "" and placeholders for it


def check_row(row: Mapping[str, Cell]) -> None:
    """Raises ValueError naming the column when a row has another set of columns or a null where FOCUS forbids it:
    a broken row is a bug here, never written."""
    if tuple(row) != COLUMN_NAMES:
        raise ValueError(f"FOCUS row columns {sorted(set(row) ^ set(COLUMN_NAMES))} differ from the export's")
    for column in COLUMNS:
        value = row[column.name]
        if value == "":
            raise ValueError(f"FOCUS column {column.name}: an empty string; null is None")
        if value is None and not column.nullable:
            raise ValueError(f"FOCUS column {column.name} must not be null")
