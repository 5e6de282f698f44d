"""Developer tools (not deployed): the workbook builder, the local cost dashboard, price catalogs, repricing, the email
screenshot, local settings for Azure. A package so that one tool can use another (the dashboard runs the workbook's
panels)."""
