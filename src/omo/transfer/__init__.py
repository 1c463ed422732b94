"""Bulk import and export: files in (CSV, XLSX, JSONL, Parquet, Shopify and Shopee exports) and
out (Parquet, CSV); nothing of an import is committed unless the whole file is valid."""
