"""The FOCUS columns of the export: which ones, their types, and what each of our rows puts in them.

FOCUS 1.2 of the FinOps Open Cost and Usage Specification (the newest release in our stored copy of the spec
repository; 1.3 exists, see README)
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
version x cost basis x currency of the cost summaries (ChargePeriod: the day) x token kind (x_TokenKind: input,
cached_input, output, the catalog's kinds). Cost Management bills a model's tokens on one meter per kind, each with its
own unit price (the Retail Prices API's "... Inp ...", "... Cd Inp ...", "... Opt ... 1M Tokens" meters,
shared/costs/catalog_retail.py), so each kind is a row of its own: ConsumedQuantity the tokens, PricingUnit
"1000000 Tokens" and PricingQuantity the tokens / 1,000,000 (Cost Management's unit of measure "1M", which
microsoft/finops-toolkit src/open-data/PricingUnits.csv reads as a block of 1,000,000; its data dictionary:
"Divide UsageQuantity by PricingBlockSize to get the PricingQuantity"), ListUnitPrice = ContractedUnitPrice the
price per 1M tokens the costs run charged (cost / PricingQuantity, so ListUnitPrice x PricingQuantity = ListCost as
FOCUS 1.2 specification/columns/listunitprice.md requires; it is the price table's price unless the run's
per-window rounding to micro-units moved it by a few micro-units per million tokens). The costs are the summaries'
own PromptCost and CachedPromptCost; the output row takes the rest of TotalCost, so a caller's rows add up to its
TotalCost exactly. Its cost is our list-price cost (the price table's), so BilledCost = EffectiveCost = ListCost =
ContractedCost; the bill check (BillReconciliation_CL) says how far the bill differs. It splits the same spend as the
account's own rows in Cost Management's export by caller: sum one or the other, not both (x_CostSource tells them
apart). A caller's day figures that belong to no one meter (x_Requests, x_EstimatedRequests, x_EstimatedCost) sit on
its first row, 0 on the others, so every column sums.
Deviations, and why: a provisioned (PTU) caller's row stays one row (x_TokenKind null, PricingQuantity 1 "Units" at
its cost): its cost is its token share of the deployment's PTU-hours, which the summaries do not carry as hours; an
unpriced row has a null ListUnitPrice / ContractedUnitPrice (no price is known; never a guessed 0, x_Unpriced says
so).
Left out: SkuMeter / SkuId (we would have to spell Cost Management's meter names and ids; x_TokenKind says which
meter), RegionId / RegionName (the summaries do not know the account's region), commitment-discount and
capacity-reservation columns (none apply), Tags and InvoiceId (not invoiced by us).
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
    Column("ContractedUnitPrice", "Decimal", True),
    Column("EffectiveCost", "Decimal", False),
    Column("InvoiceIssuerName", "String", False),
    Column("ListCost", "Decimal", False),
    Column("ListUnitPrice", "Decimal", True),
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
    Column("x_TokenKind", "String", True),
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
